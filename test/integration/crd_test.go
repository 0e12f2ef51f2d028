// Package integration checks the generated API against a real API server:
// the CRDs are served, their validation holds, and the installer applies.
package integration

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

func TestCRDs_served(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)

	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	g.Expect(err).NotTo(HaveOccurred())
	resources, err := dc.ServerResourcesForGroupVersion(imv1.GroupVersion.String())
	g.Expect(err).NotTo(HaveOccurred())

	served := map[string]metav1.APIResource{}
	for _, r := range resources.APIResources {
		served[r.Name] = r
	}
	for _, name := range []string{"chatgroups", "chatreceivers", "chatgrouptriggers"} {
		g.Expect(served).To(HaveKey(name))
		g.Expect(served).To(HaveKey(name+"/status"), "status subresource of %s", name)
		g.Expect(served[name].Namespaced).To(BeTrue())
		g.Expect(served[name].Categories).To(ContainElement("chat"))
	}
	g.Expect(served["chatgroups"].ShortNames).To(ConsistOf("cg"))

	// Member slices have no status: the callback server writes them whole.
	slices := served["chatgroupmemberslices"]
	g.Expect(slices.Namespaced).To(BeTrue())
	g.Expect(slices.Categories).To(ContainElement("chat"))
	g.Expect(slices.ShortNames).To(ConsistOf("cgms"))
	g.Expect(served).NotTo(HaveKey("chatgroupmemberslices/status"))
}

func TestChatGroup_specIsImmutable(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	ctx := context.Background()

	cg := &imv1.ChatGroup{
		ObjectMeta: metav1.ObjectMeta{Name: imv1.ChatGroupName(imv1.ProviderTencent, "1400000000", "@TGS#2J4SZEAEL"), Namespace: "default"},
		Spec:       imv1.ChatGroupSpec{Provider: imv1.ProviderTencent, AppID: "1400000000", GroupID: "@TGS#2J4SZEAEL"},
	}
	g.Expect(env.Client.Create(ctx, cg)).To(Succeed())

	cg.Spec.GroupID = "@TGS#other"
	err := env.Client.Update(ctx, cg)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("spec is immutable"))

	// Labels stay editable: users add them to drive triggers.
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(cg), cg)).To(Succeed())
	cg.Labels = map[string]string{"team": "support"}
	g.Expect(env.Client.Update(ctx, cg)).To(Succeed())
}

// TestChatGroup_statusDefaults: memberCount and disbanded are present from
// creation on. The callback server writes status with merge patches, which
// leave out fields whose value did not change; without the defaults a new
// group's disbanded column would stay empty until it was disbanded.
func TestChatGroup_statusDefaults(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	ctx := context.Background()

	cg := &imv1.ChatGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "openim-g1", Namespace: "default"},
		Spec:       imv1.ChatGroupSpec{Provider: imv1.ProviderOpenIM, GroupID: "g1"},
	}
	g.Expect(env.Client.Create(ctx, cg)).To(Succeed())
	raw := &unstructured.Unstructured{}
	raw.SetGroupVersionKind(imv1.GroupVersion.WithKind("ChatGroup"))
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(cg), raw)).To(Succeed())
	disbanded, found, _ := unstructured.NestedBool(raw.Object, "status", "disbanded")
	g.Expect(found && !disbanded).To(BeTrue(), "status.disbanded defaults to false: %v", raw.Object["status"])
	count, found, _ := unstructured.NestedInt64(raw.Object, "status", "memberCount")
	g.Expect(found).To(BeTrue(), "status.memberCount defaults to 0: %v", raw.Object["status"])
	g.Expect(count).To(BeZero())
}

func TestChatGroup_validation(t *testing.T) {
	env := testsupport.Start(t)
	ctx := context.Background()

	tests := []struct {
		name string
		spec imv1.ChatGroupSpec
		want string
	}{
		{name: "rejects an unknown provider", spec: imv1.ChatGroupSpec{Provider: "Slack", GroupID: "g"}, want: "spec.provider"},
		{name: "rejects an empty group ID", spec: imv1.ChatGroupSpec{Provider: imv1.ProviderOpenIM}, want: "spec.groupID"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			cg := &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Name: "invalid-" + string(rune('a'+i)), Namespace: "default"}, Spec: tt.spec}
			err := env.Client.Create(ctx, cg)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tt.want))
		})
	}

	t.Run("requires appID for Tencent receivers", func(t *testing.T) {
		g := NewWithT(t)
		rcv := &imv1.ChatReceiver{
			ObjectMeta: metav1.ObjectMeta{Name: "no-app", Namespace: "default"},
			Spec:       imv1.ChatReceiverSpec{Provider: imv1.ProviderTencent, SecretRef: imv1.SecretReference{Name: "s"}},
		}
		err := env.Client.Create(ctx, rcv)
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		g.Expect(err.Error()).To(ContainSubstring("appID is required"))
	})

	// L9: two OpenIM servers without appIDs wrote the same group ID into
	// one ChatGroup, so an OpenIM receiver must name its server.
	t.Run("L9 requires appID for OpenIM receivers", func(t *testing.T) {
		g := NewWithT(t)
		rcv := &imv1.ChatReceiver{
			ObjectMeta: metav1.ObjectMeta{Name: "no-app-openim", Namespace: "default"},
			Spec:       imv1.ChatReceiverSpec{Provider: imv1.ProviderOpenIM, SecretRef: imv1.SecretReference{Name: "s"}},
		}
		err := env.Client.Create(ctx, rcv)
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		g.Expect(err.Error()).To(ContainSubstring("appID is required"))
		rcv.Spec.AppID = "openim-1"
		g.Expect(env.Client.Create(ctx, rcv)).To(Succeed())
	})
}

// TestChatGroup_printerColumns reads the Table the API server renders for
// `kubectl get chatgroups`.
func TestChatGroup_printerColumns(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	ctx := context.Background()

	cg := &imv1.ChatGroup{
		ObjectMeta: metav1.ObjectMeta{Name: imv1.ChatGroupName(imv1.ProviderOpenIM, "", "G001"), Namespace: "default"},
		Spec:       imv1.ChatGroupSpec{Provider: imv1.ProviderOpenIM, GroupID: "G001"},
	}
	g.Expect(env.Client.Create(ctx, cg)).To(Succeed())
	cg.Status.Type = "Work"
	cg.Status.MemberCount = 3
	cg.Status.Owner = "u1"
	cg.Status.LastEvent = &imv1.LastEvent{Kind: imv1.EventMembersLeft, Time: metav1.NowMicro(), Key: "k"}
	g.Expect(env.Client.Status().Update(ctx, cg)).To(Succeed())

	cfg := rest.CopyConfig(env.Config)
	cfg.GroupVersion = &imv1.GroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = serializerFor()
	rc, err := rest.RESTClientFor(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	raw, err := rc.Get().Namespace("default").Resource("chatgroups").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	g.Expect(err).NotTo(HaveOccurred())

	var table metav1.Table
	g.Expect(json.Unmarshal(raw, &table)).To(Succeed())
	var names []string
	wide := map[string]bool{}
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
		wide[c.Name] = c.Priority > 0
	}
	g.Expect(names).To(Equal([]string{"Name", "Provider", "Group", "Type", "Members", "Disbanded", "Last Event", "Age", "Owner", "Ready", "Synced"}))
	g.Expect(wide["Owner"] && wide["Ready"] && wide["Synced"]).To(BeTrue(), "Owner, Ready and Synced are -o wide columns")
	g.Expect(table.Rows).To(HaveLen(1))
	cells := table.Rows[0].Cells
	g.Expect(cells[0]).To(Equal(cg.Name))
	g.Expect(cells[1:7]).To(Equal([]any{"OpenIM", "G001", "Work", float64(3), false, "MembersLeft"}))
	g.Expect(cells[8]).To(Equal("u1"))
}

// TestInstaller_appliesServerSide runs the real kubectl against the real API
// server: every object in dist/install.yaml must be accepted.
func TestInstaller_appliesServerSide(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	ctx := context.Background()

	// A server-side dry run does not persist the Namespace, so the
	// namespaced objects need it to exist already.
	g.Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "chatgroup-system"}})).To(Succeed())

	kubectl := filepath.Join(testsupport.BinDir(), "kubectl")
	install := filepath.Join(testsupport.RepoRoot(), "dist", "install.yaml")
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", env.Kubeconfig, "apply", "--server-side",
		"--force-conflicts", "--dry-run=server", "-f", install).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))

	for _, want := range []string{
		"customresourcedefinition.apiextensions.k8s.io/chatgroups.im.chatgroup.dev serverside-applied (server dry run)",
		"deployment.apps/chatgroup-controller-manager serverside-applied (server dry run)",
		"service/chatgroup-callbacks serverside-applied (server dry run)",
		"clusterrole.rbac.authorization.k8s.io/chatgroup-manager-role serverside-applied (server dry run)",
		"poddisruptionbudget.policy/chatgroup-controller-manager serverside-applied (server dry run)",
	} {
		g.Expect(string(out)).To(ContainSubstring(want))
	}
	g.Expect(strings.Count(string(out), "(server dry run)")).To(BeNumerically(">=", 15))

	// The installed CRDs are the generated ones.
	var crd apiextensionsv1.CustomResourceDefinition
	g.Expect(env.Client.Get(ctx, types.NamespacedName{Name: "chatgroups.im.chatgroup.dev"}, &crd)).To(Succeed())
	g.Expect(crd.Spec.Names.ShortNames).To(ConsistOf("cg"))
}
