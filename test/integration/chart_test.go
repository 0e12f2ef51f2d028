package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"

	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

// The chart in dist/chart is generated from config/ by hack/chart. These
// tests hold it to that: with its defaults it renders dist/install.yaml's
// objects, with monitoring on it renders config/monitoring's, its knobs
// land where they should, and the API server accepts what it renders.

const operatorNamespace = "chatgroup-system"

// tool returns the path of a tool hack/tools/build.sh builds into bin/, or
// skips in -short mode and fails with a hint when it is missing.
func tool(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs " + name + " (run without -short)")
	}
	path := filepath.Join(testsupport.RepoRoot(), "bin", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s not found: run `make %s` (builds it from Go modules)", path, name)
	}
	return path
}

// helmTemplate renders dist/chart as release "chatgroup" in the operator's
// namespace, with --set flags.
func helmTemplate(t *testing.T, set ...string) []byte {
	t.Helper()
	args := []string{"template", "chatgroup", filepath.Join(testsupport.RepoRoot(), "dist", "chart"), "--namespace", operatorNamespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return run(t, tool(t, "helm"), args...)
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), stderr.String())
	return out
}

// objects decodes a YAML stream, by "Kind namespace/name".
func objects(t *testing.T, stream []byte) map[string]*unstructured.Unstructured {
	t.Helper()
	objs := map[string]*unstructured.Unstructured{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil || len(u.Object) == 0 {
			NewWithT(t).Expect(err).NotTo(HaveOccurred())
			continue
		}
		objs[key(u)] = u
	}
}

func key(u *unstructured.Unstructured) string {
	return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
}

// withoutHelm removes what the chart adds to every object: Helm's labels
// and the CRDs' keep policy. Helm installs into an existing namespace, so
// the installer's Namespace has no counterpart either.
func withoutHelm(objs map[string]*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for k, u := range objs {
		if u.GetKind() == "Namespace" {
			continue
		}
		u = u.DeepCopy()
		labels := u.GetLabels()
		for _, l := range []string{"app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "helm.sh/chart"} {
			delete(labels, l)
		}
		u.SetLabels(labels)
		annotations := u.GetAnnotations()
		delete(annotations, "helm.sh/resource-policy")
		u.SetAnnotations(annotations)
		for _, f := range []string{"labels", "annotations"} {
			if m, _, _ := unstructured.NestedMap(u.Object, "metadata", f); len(m) == 0 {
				unstructured.RemoveNestedField(u.Object, "metadata", f)
			}
		}
		out[k] = u
	}
	return out
}

// expectSameObjects compares two renderings object by object, RBAC rules
// and CRDs included.
func expectSameObjects(t *testing.T, chart, want map[string]*unstructured.Unstructured) {
	t.Helper()
	g := NewWithT(t)
	chart, want = withoutHelm(chart), withoutHelm(want)
	g.Expect(keys(chart)).To(ConsistOf(keys(want)))
	for k, w := range want {
		g.Expect(chart[k].Object).To(Equal(w.Object), "%s differs", k)
	}
}

func keys(objs map[string]*unstructured.Unstructured) []string {
	var ks []string
	for k := range objs {
		ks = append(ks, k)
	}
	return ks
}

func TestChart_rendersTheInstaller(t *testing.T) {
	g := NewWithT(t)
	install, err := os.ReadFile(filepath.Join(testsupport.RepoRoot(), "dist", "install.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	want := objects(t, install)
	chart := objects(t, helmTemplate(t))

	// The parts that must never drift: the CRDs and every RBAC object.
	var rbac, crds int
	for k, u := range want {
		switch u.GetKind() {
		case "CustomResourceDefinition":
			crds++
			g.Expect(chart).To(HaveKey(k))
			g.Expect(chart[k].Object["spec"]).To(Equal(u.Object["spec"]), "%s: spec", k)
		case "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", "ServiceAccount":
			rbac++
			g.Expect(chart).To(HaveKey(k))
			for _, field := range []string{"rules", "roleRef", "subjects"} {
				if w, ok := u.Object[field]; ok {
					g.Expect(chart[k].Object[field]).To(Equal(w), "%s: %s", k, field)
				} else {
					g.Expect(chart[k].Object).NotTo(HaveKey(field), "%s: %s", k, field)
				}
			}
		}
	}
	g.Expect(crds).To(Equal(4))
	g.Expect(rbac).To(BeNumerically(">=", 10))
	// And everything else, apart from the Namespace and Helm's labels.
	expectSameObjects(t, chart, want)
}

func TestChart_monitoringMatchesKustomize(t *testing.T) {
	kustomized := run(t, tool(t, "kustomize"), "build", filepath.Join(testsupport.RepoRoot(), "config", "monitoring"))
	chart := objects(t, helmTemplate(t, "serviceMonitor.enabled=true", "grafanaDashboard.enabled=true"))
	want := objects(t, kustomized)
	NewWithT(t).Expect(want).To(HaveKey("ServiceMonitor " + operatorNamespace + "/chatgroup-controller-manager-metrics-monitor"))
	NewWithT(t).Expect(want).To(HaveKey("ConfigMap " + operatorNamespace + "/chatgroup-grafana-dashboard"))
	expectSameObjects(t, chart, want)
}

// knobs sets every value the chart offers away from its default.
var knobs = []string{
	"replicaCount=3",
	"image.repository=registry.example.com/team/chatgroup-operator",
	"image.tag=v1.2.3",
	"image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"image.pullPolicy=Always",
	"imagePullSecrets[0].name=pull",
	"extraArgs={--zap-log-level=debug}",
	"resources.requests.cpu=250m",
	"podAnnotations.example\\.com/team=chat",
	"podLabels.team=chat",
	"nodeSelector.kubernetes\\.io/os=linux",
	"tolerations[0].key=dedicated,tolerations[0].operator=Exists",
	"priorityClassName=system-cluster-critical",
	"callbacks.service.type=LoadBalancer",
	"callbacks.service.port=8443",
	"callbacks.service.annotations.example\\.com/lb=internal",
	"crds.keep=false",
	"serviceMonitor.enabled=true",
	"serviceMonitor.interval=15s",
	"serviceMonitor.labels.release=prometheus",
	"grafanaDashboard.enabled=true",
	"grafanaDashboard.labels.team=chat",
}

func TestChart_values(t *testing.T) {
	g := NewWithT(t)
	objs := objects(t, helmTemplate(t, knobs...))
	get := func(kind, name string) *unstructured.Unstructured {
		ns := operatorNamespace
		if kind == "CustomResourceDefinition" {
			ns = ""
		}
		u, ok := objs[kind+" "+ns+"/"+name]
		g.Expect(ok).To(BeTrue(), "%s %s is rendered", kind, name)
		return u
	}
	field := func(u *unstructured.Unstructured, path ...string) any {
		v, _, err := unstructured.NestedFieldNoCopy(u.Object, path...)
		g.Expect(err).NotTo(HaveOccurred())
		return v
	}

	deploy := get("Deployment", "chatgroup-controller-manager")
	g.Expect(field(deploy, "spec", "replicas")).To(BeEquivalentTo(3))
	pod := field(deploy, "spec", "template", "spec").(map[string]any)
	ctr := pod["containers"].([]any)[0].(map[string]any)
	g.Expect(ctr["image"]).To(Equal("registry.example.com/team/chatgroup-operator:v1.2.3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
	g.Expect(ctr["imagePullPolicy"]).To(Equal("Always"))
	g.Expect(ctr["args"]).To(HaveLen(5))
	g.Expect(ctr["args"]).To(HaveExactElements("--leader-elect", HavePrefix("--health-probe"), HavePrefix("--metrics"), HavePrefix("--callback"), "--zap-log-level=debug"))
	g.Expect(ctr["resources"]).To(HaveKeyWithValue("requests", HaveKeyWithValue("cpu", "250m")))
	g.Expect(ctr["resources"]).To(HaveKeyWithValue("limits", HaveKeyWithValue("memory", "512Mi")), "the other defaults stay")
	g.Expect(pod["imagePullSecrets"]).To(Equal([]any{map[string]any{"name": "pull"}}))
	g.Expect(pod["nodeSelector"]).To(Equal(map[string]any{"kubernetes.io/os": "linux"}))
	g.Expect(pod["tolerations"]).To(Equal([]any{map[string]any{"key": "dedicated", "operator": "Exists"}}))
	g.Expect(pod["priorityClassName"]).To(Equal("system-cluster-critical"))
	g.Expect(field(deploy, "spec", "template", "metadata", "annotations")).To(Equal(map[string]any{
		"example.com/team": "chat", "kubectl.kubernetes.io/default-container": "manager"}))
	g.Expect(field(deploy, "spec", "template", "metadata", "labels")).To(HaveKeyWithValue("team", "chat"))
	g.Expect(field(deploy, "spec", "selector", "matchLabels")).NotTo(HaveKey("team"), "the selector never changes")

	svc := get("Service", "chatgroup-callbacks")
	g.Expect(field(svc, "spec", "type")).To(Equal("LoadBalancer"))
	g.Expect(field(svc, "spec", "ports")).To(ConsistOf(HaveKeyWithValue("port", BeEquivalentTo(8443))))
	g.Expect(svc.GetAnnotations()).To(Equal(map[string]string{"example.com/lb": "internal"}))

	g.Expect(get("CustomResourceDefinition", "chatgroups.im.chatgroup.dev").GetAnnotations()).NotTo(HaveKey("helm.sh/resource-policy"))
	get("NetworkPolicy", "chatgroup-controller-manager")
	get("PodDisruptionBudget", "chatgroup-controller-manager")

	sm := get("ServiceMonitor", "chatgroup-controller-manager-metrics-monitor")
	g.Expect(sm.GetLabels()).To(HaveKeyWithValue("release", "prometheus"))
	g.Expect(field(sm, "spec", "endpoints")).To(ConsistOf(HaveKeyWithValue("interval", "15s")))
	g.Expect(get("ConfigMap", "chatgroup-grafana-dashboard").GetLabels()).To(And(
		HaveKeyWithValue("team", "chat"), HaveKeyWithValue("grafana_dashboard", "1")))

	t.Run("switches off", func(t *testing.T) {
		g := NewWithT(t)
		objs := objects(t, helmTemplate(t, "crds.install=false", "networkPolicy.enabled=false", "podDisruptionBudget.enabled=false"))
		for k := range objs {
			g.Expect(k).NotTo(HavePrefix("CustomResourceDefinition "))
			g.Expect(k).NotTo(HavePrefix("NetworkPolicy "))
			g.Expect(k).NotTo(HavePrefix("PodDisruptionBudget "))
			g.Expect(k).NotTo(HavePrefix("ServiceMonitor "), "off by default")
			g.Expect(k).NotTo(HavePrefix("ConfigMap "), "off by default")
		}
		g.Expect(objs).To(HaveKey("Deployment " + operatorNamespace + "/chatgroup-controller-manager"))
	})
}

// TestChart_appliesServerSide: the API server accepts what the chart
// renders, with its defaults and with every knob turned.
func TestChart_appliesServerSide(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}})).To(Succeed())
	// The Prometheus Operator is not installed here: a stand-in CRD lets
	// the server check the ServiceMonitor's group, version, kind and
	// scope. Its fields are held to config/ by the tests above.
	installServiceMonitorStub(t, env)

	kubectl := filepath.Join(testsupport.BinDir(), "kubectl")
	for _, tt := range []struct {
		name string
		set  []string
	}{
		{name: "defaults"},
		{name: "every knob", set: knobs},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			rendered := helmTemplate(t, tt.set...)
			cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", env.Kubeconfig, "apply", "--server-side",
				"--force-conflicts", "--dry-run=server", "-f", "-")
			cmd.Stdin = bytes.NewReader(rendered)
			out, err := cmd.CombinedOutput()
			g.Expect(err).NotTo(HaveOccurred(), string(out))
			g.Expect(strings.Count(string(out), "(server dry run)")).To(Equal(len(objects(t, rendered))), string(out))
			g.Expect(string(out)).To(ContainSubstring("deployment.apps/chatgroup-controller-manager serverside-applied (server dry run)"))
		})
	}
}

func installServiceMonitorStub(t *testing.T, env *testsupport.Env) {
	t.Helper()
	g := NewWithT(t)
	preserve := true
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "servicemonitors.monitoring.coreos.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "monitoring.coreos.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "servicemonitors", Kind: "ServiceMonitor"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: &preserve,
				}},
			}},
		},
	}
	g.Expect(env.Client.Create(t.Context(), crd)).To(Succeed())
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() error {
		_, err := dc.ServerResourcesForGroupVersion("monitoring.coreos.com/v1")
		return err
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
}

// TestInstaller_pinsTheImage: the committed installer and chart name a
// versioned image, never :latest, and the same one.
func TestInstaller_pinsTheImage(t *testing.T) {
	g := NewWithT(t)
	root := testsupport.RepoRoot()
	install, err := os.ReadFile(filepath.Join(root, "dist", "install.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	deploy := objects(t, install)["Deployment "+operatorNamespace+"/chatgroup-controller-manager"]
	g.Expect(deploy).NotTo(BeNil())
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	g.Expect(containers).To(HaveLen(1))
	image := containers[0].(map[string]any)["image"].(string)
	g.Expect(image).To(MatchRegexp(`^[a-z0-9./:-]*chatgroup-operator:v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(@sha256:[0-9a-f]{64})?$`))

	var values struct {
		Image struct{ Repository, Tag, Digest string }
	}
	raw, err := os.ReadFile(filepath.Join(root, "dist", "chart", "values.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(utilyaml.Unmarshal(raw, &values)).To(Succeed())
	chartImage := values.Image.Repository + ":" + values.Image.Tag
	if values.Image.Digest != "" {
		chartImage += "@" + values.Image.Digest
	}
	g.Expect(chartImage).To(Equal(image))
}

// TestInstaller_L10_shipsNetworkPolicyAndPodDisruptionBudget: the
// installer (and so the chart's defaults) hardens the manager with a
// NetworkPolicy and a PodDisruptionBudget that select its Pods, and the
// budget never blocks a drain.
func TestInstaller_L10_shipsNetworkPolicyAndPodDisruptionBudget(t *testing.T) {
	g := NewWithT(t)
	install, err := os.ReadFile(filepath.Join(testsupport.RepoRoot(), "dist", "install.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	objs := objects(t, install)
	field := func(u *unstructured.Unstructured, path ...string) any {
		v, _, err := unstructured.NestedFieldNoCopy(u.Object, path...)
		g.Expect(err).NotTo(HaveOccurred())
		return v
	}
	key := func(kind string) string { return kind + " " + operatorNamespace + "/chatgroup-controller-manager" }
	g.Expect(objs).To(HaveKey(key("Deployment")))
	podLabels := field(objs[key("Deployment")], "spec", "template", "metadata", "labels")
	g.Expect(objs).To(HaveKey(key("NetworkPolicy")))
	g.Expect(field(objs[key("NetworkPolicy")], "spec", "podSelector", "matchLabels")).To(Equal(podLabels))
	g.Expect(objs).To(HaveKey(key("PodDisruptionBudget")))
	pdb := objs[key("PodDisruptionBudget")]
	g.Expect(field(pdb, "spec", "selector", "matchLabels")).To(Equal(podLabels))
	g.Expect(field(pdb, "spec", "maxUnavailable")).To(BeEquivalentTo(1))
	g.Expect(field(pdb, "spec")).NotTo(HaveKey("minAvailable"))
}
