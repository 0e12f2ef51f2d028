//go:build flux

// Package flux delivers CloudEvents to a real Flux notification-controller
// generic-hmac Receiver, built from Go modules by `make
// flux-notification-controller`, against envtest: first with
// internal/cloudevent directly, then through the operator's controllers and
// a trigger's cloudEvent. make test builds the controller and runs this
// package (build tag flux); it is skipped when the binary is missing. Run
// it alone with `go test -tags flux ./test/flux/ -count=1 -v`.
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
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/controllers"
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

	t.Run("a disband through the operator's trigger", func(t *testing.T) {
		disbandThroughTrigger(t, env, receiverAddr, token)
	})
}

// disbandThroughTrigger runs the operator's controllers with a trigger
// whose cloudEvent points at a second Receiver, disbands a group, and
// expects Flux to annotate that Receiver's GitRepository.
func disbandThroughTrigger(t *testing.T, env *testsupport.Env, receiverAddr string, token []byte) {
	ctx := context.Background()
	c := env.Client
	g := NewWithT(t)
	repo := object("source.toolkit.fluxcd.io/v1", "GitRepository", "chat-cleanup", map[string]any{
		"url": "https://git.example/chat-cleanup", "interval": "10m",
	})
	g.Expect(c.Create(ctx, repo)).To(Succeed())
	receiver := object("notification.toolkit.fluxcd.io/v1", "Receiver", "disbands", map[string]any{
		"type":      "generic-hmac",
		"secretRef": map[string]any{"name": "receiver-token"},
		"resources": []any{map[string]any{
			"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "chat-cleanup",
		}},
	})
	g.Expect(c.Create(ctx, receiver)).To(Succeed())
	var webhookPath string
	g.Eventually(func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(receiver), receiver)).To(Succeed())
		webhookPath, _, _ = unstructured.NestedString(receiver.Object, "status", "webhookPath")
		g.Expect(webhookPath).NotTo(BeEmpty())
	}, 2*time.Minute, 200*time.Millisecond).Should(Succeed(), "the Receiver gets a webhook path")

	startOperator(t, env)
	g.Expect(c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "gitops-token"},
		Data:       map[string][]byte{controllers.TokenKey: token},
	})).To(Succeed())
	g.Expect(c.Create(ctx, &imv1.ChatGroupTrigger{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "gitops"},
		Spec: imv1.ChatGroupTriggerSpec{
			On:       []imv1.TriggerEvent{imv1.TriggerDisbanded},
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"gitops": "true"}},
			CloudEvent: &imv1.CloudEventAction{
				URL:       "http://" + receiverAddr + webhookPath,
				SecretRef: &corev1.LocalObjectReference{Name: "gitops-token"},
			},
		},
	})).To(Succeed())
	spec := imv1.ChatGroupSpec{Provider: imv1.ProviderTencent, AppID: "1400000001", GroupID: "@TGS#flux"}
	cg := &imv1.ChatGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: imv1.ChatGroupName(spec.Provider, spec.AppID, spec.GroupID),
			Labels: map[string]string{"gitops": "true"}},
		Spec: spec,
	}
	g.Expect(c.Create(ctx, cg)).To(Succeed())
	base := cg.DeepCopy()
	cg.Status.Journal = []imv1.JournalEntry{{Seq: 1, Kind: imv1.EventDisbanded, Operator: "leckie",
		Time: metav1.NewMicroTime(time.Now()), Key: "disband-1"}}
	cg.Status.LastSeq, cg.Status.Disbanded = 1, true
	g.Expect(c.Status().Patch(ctx, cg, client.MergeFrom(base))).To(Succeed())

	g.Eventually(func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(repo), repo)).To(Succeed())
		g.Expect(repo.GetAnnotations()).To(HaveKey(requestedAt))
	}, time.Minute, 200*time.Millisecond).Should(Succeed(), "the disband makes Flux request a reconcile")
	g.Eventually(func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(cg), cg)).To(Succeed())
		g.Expect(cg.Status.Triggers).To(HaveLen(1))
		ts := cg.Status.Triggers[0]
		g.Expect(ts.Cursor).To(Equal(int64(1)))
		g.Expect(ts.LastDelivery).NotTo(BeNil())
		g.Expect(ts.LastDelivery.Outcome).To(Equal(imv1.DeliveryDelivered))
	}, time.Minute, 200*time.Millisecond).Should(Succeed())
}

// startOperator runs the operator's controllers against the control plane
// until the test ends.
func startOperator(t *testing.T, env *testsupport.Env) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   controllers.CacheOptions(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.SetupWithManager(mgr, controllers.Options{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
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
