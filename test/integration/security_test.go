package integration

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/controllers"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider/providertest"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
	"chatgroup.dev/chatgroup-operator/webhookserver"
)

// managerServiceAccount is the installer's identity for the operator.
const managerServiceAccount = "system:serviceaccount:chatgroup-system:chatgroup-controller-manager"

// installOperator applies dist/install.yaml to the control plane.
func installOperator(t *testing.T, env *testsupport.Env) {
	t.Helper()
	kubectl := filepath.Join(testsupport.BinDir(), "kubectl")
	install := filepath.Join(testsupport.RepoRoot(), "dist", "install.yaml")
	out, err := exec.Command(kubectl, "--kubeconfig", env.Kubeconfig, "apply", "--server-side",
		"--force-conflicts", "-f", install).CombinedOutput()
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), string(out))
}

// asManager is env's admin config impersonating the installer's manager
// ServiceAccount, so requests get exactly the installed RBAC.
func asManager(env *testsupport.Env) *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: managerServiceAccount}
	return cfg
}

// TestRBAC_H1_managerCannotListSecrets: the installed ClusterRole lets the
// operator get a Secret by name, but not list or watch Secrets anywhere,
// and kubectl auth can-i (the documented check) answers no.
func TestRBAC_H1_managerCannotListSecrets(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	installOperator(t, env)
	ctx := context.Background()

	c, err := client.New(asManager(env), client.Options{Scheme: env.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	err = c.List(ctx, &corev1.SecretList{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "listing Secrets cluster-wide: %v", err)
	err = c.List(ctx, &corev1.SecretList{}, client.InNamespace("default"))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "listing Secrets in a namespace: %v", err)

	kubectl := filepath.Join(testsupport.BinDir(), "kubectl")
	canI := func(args ...string) (string, error) {
		out, err := exec.Command(kubectl, append([]string{"--kubeconfig", env.Kubeconfig, "auth", "can-i"}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	out, err := canI("list", "secrets", "--all-namespaces", "--as="+managerServiceAccount)
	g.Expect(out).To(Equal("no"))
	g.Expect(err).To(HaveOccurred(), "kubectl auth can-i exits 1 when the answer is no")
	out, _ = canI("watch", "secrets", "--all-namespaces", "--as="+managerServiceAccount)
	g.Expect(out).To(Equal("no"))
	out, err = canI("get", "secrets", "--namespace", "default", "--as="+managerServiceAccount)
	g.Expect(out).To(Equal("yes"), "reading a receiver's Secret by name")
	g.Expect(err).NotTo(HaveOccurred())
}

// TestRBAC_H1_operatorWorksWithoutListingSecrets runs the reconcilers and
// the callback server as main.go wires them, under the installed RBAC: a
// receiver becomes Ready from its Secret and a signed callback is stored,
// although the operator may not list or watch Secrets.
func TestRBAC_H1_operatorWorksWithoutListingSecrets(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	installOperator(t, env)
	ctx := context.Background()
	ns := "tenant-a"
	g.Expect(testsupport.CreateNamespace(ctx, env.Client, ns)).To(Succeed())
	token := "h1-token-0123456789abcdef0123456789abcdef"
	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tencent"},
		Data: map[string][]byte{imv1.TokenKey: []byte(token)}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &imv1.ChatReceiver{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tencent"},
		Spec: imv1.ChatReceiverSpec{Provider: imv1.ProviderTencent, AppID: providertest.SampleAppID(imv1.ProviderTencent),
			SecretRef: imv1.SecretReference{Name: "tencent"}}})).To(Succeed())

	baseURL := startOperator(t, asManager(env), env)
	var ep providertest.Endpoint
	g.Eventually(func() (err error) {
		ep, err = providertest.ForReceiver(ctx, env.Client, types.NamespacedName{Namespace: ns, Name: "tencent"})
		return err
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())

	cbs, err := ep.Sender.Build(callbacks.Create, callbacks.Params{GroupID: "@TGS#H1", Users: []string{"alice", "bob"}})
	g.Expect(err).NotTo(HaveOccurred())
	req, err := ep.Sender.Request(ctx, baseURL, ep.Path, cbs[0])
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), string(body))
	g.Expect(ep.Sender.CheckReply(body)).To(Succeed())

	cg := &imv1.ChatGroup{}
	key := types.NamespacedName{Namespace: ns, Name: imv1.ChatGroupName(imv1.ProviderTencent, ep.AppID, "@TGS#H1")}
	g.Expect(env.Client.Get(ctx, key, cg)).To(Succeed())
	g.Expect(cg.Status.MemberCount).To(BeEquivalentTo(2))
}

// startOperator runs the manager as main.go builds it, with cfg's
// identity, and returns the callback server's base URL.
func startOperator(t *testing.T, cfg *rest.Config, env *testsupport.Env) string {
	t.Helper()
	g := NewWithT(t)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions(),
		Client:                 controllers.ClientOptions(),
	})
	g.Expect(err).NotTo(HaveOccurred())
	opts := webhookserver.DefaultOptions()
	opts.Addr, opts.CommitBudget = "127.0.0.1:0", 30*time.Second
	srv := webhookserver.New(mgr, opts)
	g.Expect(srv.SetupWithManager(mgr)).To(Succeed())
	g.Expect(controllers.SetupWithManager(mgr, controllers.Options{})).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	g.Eventually(srv.BoundAddr, 30*time.Second, 50*time.Millisecond).ShouldNot(BeEmpty())
	return "http://" + srv.BoundAddr()
}

// TestRBAC_M7_managerImpersonatesServiceAccountsOnly: the operator may not
// create Jobs itself; it may only impersonate ServiceAccounts (to create
// them as a trigger's ServiceAccount), not users or groups.
func TestRBAC_M7_managerImpersonatesServiceAccountsOnly(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	installOperator(t, env)
	kubectl := filepath.Join(testsupport.BinDir(), "kubectl")
	canI := func(args ...string) string {
		out, _ := exec.Command(kubectl, append([]string{"--kubeconfig", env.Kubeconfig, "auth", "can-i"},
			append(args, "--as="+managerServiceAccount)...)...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	g.Expect(canI("create", "jobs", "--all-namespaces")).To(Equal("no"))
	g.Expect(canI("impersonate", "serviceaccounts", "--all-namespaces")).To(Equal("yes"))
	g.Expect(canI("impersonate", "users")).To(Equal("no"))
	g.Expect(canI("impersonate", "groups")).To(Equal("no"))
}

// TestChatReceiver_L8_groupLabelsAreValidated: labels that could never be
// put on a ChatGroup are refused when the receiver is written, instead of
// failing every callback later.
func TestChatReceiver_L8_groupLabelsAreValidated(t *testing.T) {
	env := testsupport.Start(t)
	ctx := context.Background()
	receiver := func(name string, labels map[string]imv1.LabelValue) *imv1.ChatReceiver {
		return &imv1.ChatReceiver{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: imv1.ChatReceiverSpec{Provider: imv1.ProviderTencent, AppID: "1400000000",
				SecretRef: imv1.SecretReference{Name: "s"}, GroupLabels: labels}}
	}
	for name, labels := range map[string]map[string]imv1.LabelValue{
		"space-in-key":   {"team name": "x"},
		"space-in-value": {"team": "a b"},
		"long-value":     {"team": imv1.LabelValue(strings.Repeat("a", 64))},
		"long-name":      {strings.Repeat("a", 64): "x"},
		"bad-prefix":     {"Example.COM/team": "x"},
	} {
		t.Run(name, func(t *testing.T) {
			err := env.Client.Create(ctx, receiver(name, labels))
			NewWithT(t).Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		})
	}
	t.Run("valid", func(t *testing.T) {
		NewWithT(t).Expect(env.Client.Create(ctx, receiver("valid", map[string]imv1.LabelValue{
			"chat.example.com/cleanup": "true", "team": "support", "empty": ""}))).To(Succeed())
	})
}

// TestChatReceiver_M4_pathIsNotPrinted: the webhook path (for OpenIM the
// credential) is not a printer column, so kubectl get -o wide does not
// show it.
func TestChatReceiver_M4_pathIsNotPrinted(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	var crd apiextensionsv1.CustomResourceDefinition
	g.Expect(env.Client.Get(context.Background(), types.NamespacedName{Name: "chatreceivers.im.chatgroup.dev"}, &crd)).To(Succeed())
	for _, col := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		g.Expect(col.JSONPath).NotTo(ContainSubstring("webhookPath"), col.Name)
	}
}
