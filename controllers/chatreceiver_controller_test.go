package controllers

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

func TestChatReceiverReconciler_Reconcile(t *testing.T) {
	c := integration(t)
	ns := newNamespace(t, c)
	startManager(t, ns)
	ctx := context.Background()

	rcv := &imv1.ChatReceiver{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tencent"},
		Spec: imv1.ChatReceiverSpec{
			Provider:     imv1.ProviderTencent,
			AppID:        "1400000001",
			SecretRef:    imv1.SecretReference{Name: "tencent-token"},
			AllowedCIDRs: []string{"10.0.0.0/8", "2001:db8::/32"},
		},
	}
	NewWithT(t).Expect(c.Create(ctx, rcv)).To(Succeed())
	ready := func(g Gomega) *metav1.Condition {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(rcv), rcv)).To(Succeed())
		return meta.FindStatusCondition(rcv.Status.Conditions, imv1.ReadyCondition)
	}

	t.Run("is not ready without its Secret", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(ready, timeout, interval).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", imv1.SecretNotFoundReason),
			HaveField("Message", ContainSubstring("tencent-token")),
			HaveField("ObservedGeneration", rcv.Generation)))
		g.Expect(rcv.Status.WebhookPath).To(BeEmpty())
	})

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tencent-token"},
		Data:       map[string][]byte{"unrelated": []byte("x")},
	}
	t.Run("is not ready without a token", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(c.Create(ctx, secret)).To(Succeed())
		g.Eventually(ready, timeout, interval).Should(HaveField("Reason", imv1.TokenNotFoundReason))
	})

	t.Run("publishes the webhook path once the token exists", func(t *testing.T) {
		g := NewWithT(t)
		secret.Data = map[string][]byte{imv1.TokenKey: []byte("s3cret")}
		g.Expect(c.Update(ctx, secret)).To(Succeed())
		g.Eventually(ready, timeout, interval).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", imv1.SucceededReason)))
		g.Expect(rcv.Status.WebhookPath).To(Equal(imv1.WebhookPath(ns, "tencent", "s3cret")))
		g.Expect(rcv.Status.PreviousWebhookPath).To(BeEmpty())
		g.Expect(rcv.Status.ObservedGeneration).To(Equal(rcv.Generation))
	})

	t.Run("publishes the previous path during a rotation", func(t *testing.T) {
		g := NewWithT(t)
		secret.Data = map[string][]byte{imv1.TokenKey: []byte("n3w"), imv1.PreviousTokenKey: []byte("s3cret")}
		g.Expect(c.Update(ctx, secret)).To(Succeed())
		g.Eventually(func(g Gomega) {
			ready(g)
			g.Expect(rcv.Status.WebhookPath).To(Equal(imv1.WebhookPath(ns, "tencent", "n3w")))
			g.Expect(rcv.Status.PreviousWebhookPath).To(Equal(imv1.WebhookPath(ns, "tencent", "s3cret")))
		}, timeout, interval).Should(Succeed())
	})

	t.Run("satisfies kubectl wait", func(t *testing.T) {
		g := NewWithT(t)
		kubectl := filepath.Join(testsupport.BinDir(), "kubectl")
		out, err := exec.Command(kubectl, "--kubeconfig", env.Kubeconfig, "-n", ns,
			"wait", "--for=condition=Ready", "chatreceiver/tencent", "--timeout=30s").CombinedOutput()
		g.Expect(err).NotTo(HaveOccurred(), string(out))
		g.Expect(string(out)).To(ContainSubstring("condition met"))
	})

	t.Run("stalls on an invalid CIDR", func(t *testing.T) {
		g := NewWithT(t)
		bad := &imv1.ChatReceiver{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-cidr"},
			Spec: imv1.ChatReceiverSpec{
				Provider:     imv1.ProviderOpenIM,
				AppID:        "openim-1",
				SecretRef:    imv1.SecretReference{Name: "tencent-token"},
				AllowedCIDRs: []string{"10.0.0.0/33"},
			},
		}
		g.Expect(c.Create(ctx, bad)).To(Succeed())
		g.Eventually(func(g Gomega) []metav1.Condition {
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(bad), bad)).To(Succeed())
			return bad.Status.Conditions
		}, timeout, interval).Should(ContainElements(
			And(HaveField("Type", imv1.ReadyCondition), HaveField("Reason", imv1.InvalidSpecReason)),
			And(HaveField("Type", imv1.StalledCondition), HaveField("Status", metav1.ConditionTrue))))
		g.Expect(bad.Status.WebhookPath).To(BeEmpty())
	})
}
