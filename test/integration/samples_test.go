package integration

import (
	"context"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/localcluster"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

// TestSamples_L5_applyWithRandomTokens: what make run-local and the e2e
// suite do with config/samples is accepted by the API server (every
// receiver has an appID, L9), and each receiver's Secret gets its own
// random token, which a second run keeps.
func TestSamples_L5_applyWithRandomTokens(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	ctx := context.Background()
	c := &localcluster.Cluster{Kubeconfig: env.Kubeconfig, BinDir: testsupport.BinDir()}
	dir := filepath.Join(testsupport.RepoRoot(), "config", "samples")
	g.Expect(c.ApplySamples(ctx, dir, "default")).To(Succeed())

	tokens := map[string]string{}
	for _, name := range localcluster.SampleTokenSecrets {
		var s corev1.Secret
		g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: "default", Name: name}, &s)).To(Succeed())
		g.Expect(string(s.Data[imv1.TokenKey])).To(MatchRegexp(`^[0-9a-f]{64}$`))
		tokens[name] = string(s.Data[imv1.TokenKey])
	}
	g.Expect(tokens[localcluster.SampleTokenSecrets[0]]).NotTo(Equal(tokens[localcluster.SampleTokenSecrets[1]]))
	var receivers imv1.ChatReceiverList
	g.Expect(env.Client.List(ctx, &receivers)).To(Succeed())
	g.Expect(receivers.Items).To(HaveLen(2))

	g.Expect(c.ApplySamples(ctx, dir, "default")).To(Succeed(), "a second run")
	for name, token := range tokens {
		var s corev1.Secret
		g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: "default", Name: name}, &s)).To(Succeed())
		g.Expect(string(s.Data[imv1.TokenKey])).To(Equal(token))
	}
}
