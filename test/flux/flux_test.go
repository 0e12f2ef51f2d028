//go:build flux

// Package flux delivers CloudEvents with internal/cloudevent to a real Flux
// notification-controller generic-hmac Receiver, built from Go modules by
// `hack/tools/build.sh flux-notification-controller`, against envtest. It
// is skipped when that binary has not been built. Run it with
// `go test -tags flux ./test/flux/ -count=1 -v`.
package flux

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/cloudevent"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

const (
	namespace = "flux-receiver"
	// requestedAt is the annotation a Receiver sets to ask Flux to
	// reconcile an object (fluxcd/pkg/apis/meta ReconcileRequestAnnotation).
	requestedAt = "reconcile.fluxcd.io/requestedAt"
)

func TestCloudEventToGenericHMACReceiver(t *testing.T) {
	bin := filepath.Join(testsupport.RepoRoot(), "bin", "flux-notification-controller")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s not built: run `hack/tools/build.sh flux-notification-controller`", bin)
	}
	env := testsupport.Start(t)
	installCRDs(t, env)
	receiverAddr := startNotificationController(t, bin, env.Kubeconfig)

	ctx := context.Background()
	c := env.Client
	token := []byte("a-generated-token-of-32-bytes-ok")
	gm := NewWithT(t)
	gm.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
	gm.Expect(c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "receiver-token"},
		Data:       map[string][]byte{"token": token},
	})).To(Succeed())
	repo := object("source.toolkit.fluxcd.io/v1", "GitRepository", "chat-config", map[string]any{
		"url": "https://git.example/chat-config", "interval": "10m",
	})
	gm.Expect(c.Create(ctx, repo)).To(Succeed())
	receiver := object("notification.toolkit.fluxcd.io/v1", "Receiver", "chatgroups", map[string]any{
		"type":      "generic-hmac",
		"secretRef": map[string]any{"name": "receiver-token"},
		"resources": []any{map[string]any{
			"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "chat-config",
		}},
	})
	gm.Expect(c.Create(ctx, receiver)).To(Succeed())

	var webhookPath string
	gm.Eventually(func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(receiver), receiver)).To(Succeed())
		webhookPath, _, _ = unstructured.NestedString(receiver.Object, "status", "webhookPath")
		g.Expect(webhookPath).NotTo(BeEmpty())
	}, 2*time.Minute, 200*time.Millisecond).Should(Succeed(), "the Receiver gets a webhook path")

	sender, err := cloudevent.NewSender(cloudevent.Options{MaxAttempts: 20, MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second})
	gm.Expect(err).NotTo(HaveOccurred())
	url := "http://" + receiverAddr + webhookPath
	entry := &cloudevent.Entry{
		Namespace: namespace, Name: "tencent-tgs-1-0123456789abcdef", UID: types.UID("5d9c0a5e-7f61-4d1e-9a0e-1c2b3d4e5f60"),
		GroupID: "@TGS#_1", Kind: imv1.EventDisbanded, Seq: 9, Time: time.Now(),
		Data: []byte(`{"namespace":"flux-receiver","name":"tencent-tgs-1-0123456789abcdef","provider":"Tencent","groupID":"@TGS#_1","trigger":"gitops","seq":9,"kind":"Disbanded","time":"2026-11-23T14:00:00Z","key":"k"}`),
	}

	// The Receiver's cache may lag behind its status: a 503 until then is
	// retried by the Sender, a wrong signature is refused for good.
	wrong := sender.Send(ctx, &cloudevent.Target{URL: url, Token: []byte("not-the-token-but-also-32-bytes!")}, entry)
	gm.Expect(wrong.Outcome).To(Equal(cloudevent.Failed), "%+v", wrong)
	gm.Expect(wrong.StatusCode).To(Equal(400), "%+v", wrong)
	gm.Expect(c.Get(ctx, client.ObjectKeyFromObject(repo), repo)).To(Succeed())
	gm.Expect(repo.GetAnnotations()).NotTo(HaveKey(requestedAt), "a wrongly signed event requests nothing")

	res := sender.Send(ctx, &cloudevent.Target{URL: url, Token: token}, entry)
	gm.Expect(res.Outcome).To(Equal(cloudevent.Delivered), "%+v", res)
	gm.Eventually(func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(repo), repo)).To(Succeed())
		g.Expect(repo.GetAnnotations()).To(HaveKey(requestedAt))
	}, time.Minute, 200*time.Millisecond).Should(Succeed(), "Flux requests a reconcile of the GitRepository")
}

// object is a namespaced custom object.
func object(apiVersion, kind, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// installCRDs installs notification-controller's CRDs, from the module the
// binary was built from, and the minimal GitRepository CRD.
func installCRDs(t *testing.T, env *testsupport.Env) {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/fluxcd/notification-controller")
	cmd.Dir = filepath.Join(testsupport.RepoRoot(), "hack", "tools", "flux")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("finding the notification-controller module: %v", err)
	}
	_, err = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
		Paths: []string{
			filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "bases"),
			filepath.Join("testdata", "gitrepositories.yaml"),
		},
		ErrorIfPathMissing: true,
	})
	if err != nil {
		t.Fatalf("installing CRDs: %v", err)
	}
}

// startNotificationController runs the controller with every server on a
// free loopback port and returns the receiver's address. Its output is
// logged when the test fails.
func startNotificationController(t *testing.T, bin, kubeconfig string) string {
	t.Helper()
	receiverAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var output bytes.Buffer
	cmd := exec.CommandContext(ctx, bin,
		"--receiverAddr="+receiverAddr,
		"--metrics-addr="+freeAddr(t),
		"--health-addr="+freeAddr(t),
		"--events-addr="+freeAddr(t),
		"--watch-all-namespaces=true",
		"--enable-leader-election=false",
		"--log-level=debug",
	)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("notification-controller output:\n%s", output.String())
		}
	})
	return receiverAddr
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return fmt.Sprint(l.Addr())
}
