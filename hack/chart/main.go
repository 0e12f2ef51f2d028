// Command chart generates the Helm chart in dist/chart from the kustomize
// configuration, so that config/ stays the one source of truth: the chart
// renders, with its default values, the same objects as dist/install.yaml
// (plus Helm's labels), and the same monitoring objects as config/monitoring
// when those are switched on.
//
// It reads `kustomize build config/monitoring` and turns each object into a
// template: the namespace becomes the release's, the usual knobs (replicas,
// image, resources, scheduling, extra flags, the callback Service's type,
// port and annotations) become values whose defaults are the kustomize
// ones, and the optional parts (CRDs, NetworkPolicy, PodDisruptionBudget,
// ServiceMonitor, Grafana dashboard) sit behind switches. `make build-installer` runs it:
//
//	bin/kustomize build config/monitoring | go run ./hack/chart --out dist/chart --version 0.1.0
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"chatgroup.dev/chatgroup-operator/internal/cli"
)

const chartName = "chatgroup-operator"

type options struct {
	in, out, version, source string
}

func main() {
	cli.SetUpLogging(os.Stderr, false)
	var o options
	fs := cli.NewFlagSet("chart", "kustomize build config/monitoring | go run ./hack/chart --out dist/chart --version X.Y.Z")
	fs.StringVar(&o.in, "in", "-", "The kustomize output to generate from (- for stdin).")
	fs.StringVar(&o.out, "out", filepath.Join("dist", "chart"), "The chart directory; its generated files are replaced.")
	fs.StringVar(&o.version, "version", "", "The chart version, SemVer without a leading v (required).")
	fs.StringVar(&o.source, "source", "", "The source repository's URL, for Chart.yaml.")
	cli.Parse(fs)
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "chart: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.version == "" || strings.HasPrefix(o.version, "v") {
		return fmt.Errorf("--version must be a SemVer version without a leading v, got %q", o.version)
	}
	in := io.Reader(os.Stdin)
	if o.in != "-" {
		f, err := os.Open(o.in)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		in = f
	}
	objs, err := decode(in)
	if err != nil {
		return err
	}
	c, err := generate(objs)
	if err != nil {
		return err
	}
	c.version, c.source = o.version, o.source
	return c.write(o.out)
}

// object is one decoded Kubernetes object.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }
func (o object) meta() map[string]any {
	m, _ := o["metadata"].(map[string]any)
	return m
}
func (o object) name() string { s, _ := o.meta()["name"].(string); return s }

func decode(r io.Reader) ([]object, error) {
	var objs []object
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the kustomize output: %w", err)
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return nil, fmt.Errorf("decoding the kustomize output: %w", err)
		}
		if len(o) > 0 {
			objs = append(objs, o)
		}
	}
}

// chart is the generated chart.
type chart struct {
	version, source string
	// appVersion is the manager image's tag.
	appVersion string
	// templates and files by path relative to the chart directory.
	templates, files map[string]string
	values           valueDefaults
}

// valueDefaults are the defaults values.yaml takes from the kustomize
// output.
type valueDefaults struct {
	Replicas                        any
	ImageRepository, ImageTag       string
	ImageDigest                     string
	Resources                       string
	CallbackServiceType             string
	CallbackServicePort             any
	DashboardLabelKey, DashboardVal string
}

// Sentinels mark the places where generate puts template code: a value or
// a map key set to a sentinel, marshalled, then replaced line by line.
const (
	sLabels         = "__CHART_LABELS__"
	sKeepCRD        = "__CHART_KEEP_CRD__"
	sReplicas       = "__CHART_REPLICAS__"
	sImage          = "__CHART_IMAGE__"
	sPullPolicy     = "__CHART_PULL_POLICY__"
	sExtraArgs      = "__CHART_EXTRA_ARGS__"
	sResources      = "__CHART_RESOURCES__"
	sPodAnnotations = "__CHART_POD_ANNOTATIONS__"
	sPodLabels      = "__CHART_POD_LABELS__"
	sPodScheduling  = "__CHART_POD_SCHEDULING__"
	sServiceAnn     = "__CHART_SERVICE_ANNOTATIONS__"
	sServiceType    = "__CHART_SERVICE_TYPE__"
	sServicePort    = "__CHART_SERVICE_PORT__"
	sMonitorLabels  = "__CHART_MONITOR_LABELS__"
	sMonitorEvery   = "__CHART_MONITOR_INTERVAL__"
	sDashboardLbls  = "__CHART_DASHBOARD_LABELS__"
	sFile           = "__CHART_FILE_" // + file name + "__"
)

// replacements turn each sentinel line into template code. Each gets the
// line's indentation and the text before the sentinel on it (for a value
// sentinel, the key and its colon).
var replacements = map[string]func(ind, prefix string) string{
	sLabels: func(ind, _ string) string {
		return ind + `{{- include "chatgroup-operator.labels" . | nindent ` + width(ind) + ` }}`
	},
	sKeepCRD: func(ind, _ string) string {
		return ind + "{{- if .Values.crds.keep }}\n" + ind + "helm.sh/resource-policy: keep\n" + ind + "{{- end }}"
	},
	sReplicas:   inline("{{ .Values.replicaCount }}"),
	sImage:      inline(`{{ include "chatgroup-operator.image" . }}`),
	sPullPolicy: with(".Values.image.pullPolicy", "imagePullPolicy: {{ . }}"),
	sExtraArgs: func(ind, _ string) string {
		return ind + "{{- range .Values.extraArgs }}\n" + ind + "- {{ . | quote }}\n" + ind + "{{- end }}"
	},
	sResources: func(ind, prefix string) string {
		return prefix + "\n" + ind + "  {{- toYaml .Values.resources | nindent " + width(ind+"  ") + " }}"
	},
	sPodAnnotations: mapEntries(".Values.podAnnotations"),
	sPodLabels:      mapEntries(".Values.podLabels"),
	sPodScheduling: func(ind, _ string) string {
		var b strings.Builder
		for _, f := range []string{"imagePullSecrets", "nodeSelector", "tolerations", "affinity"} {
			b.WriteString(ind + "{{- with .Values." + f + " }}\n" + ind + f + ":\n" +
				ind + "  {{- toYaml . | nindent " + width(ind+"  ") + " }}\n" + ind + "{{- end }}\n")
		}
		b.WriteString(ind + "{{- with .Values.priorityClassName }}\n" + ind + "priorityClassName: {{ . }}\n" + ind + "{{- end }}")
		return b.String()
	},
	sServiceAnn: func(ind, _ string) string {
		return ind + "{{- with .Values.callbacks.service.annotations }}\n" + ind + "annotations:\n" +
			ind + "  {{- toYaml . | nindent " + width(ind+"  ") + " }}\n" + ind + "{{- end }}"
	},
	sServiceType:   inline("{{ .Values.callbacks.service.type }}"),
	sServicePort:   inline("{{ .Values.callbacks.service.port }}"),
	sMonitorLabels: mapEntries(".Values.serviceMonitor.labels"),
	sMonitorEvery:  with(".Values.serviceMonitor.interval", "interval: {{ . }}"),
	sDashboardLbls: mapEntries(".Values.grafanaDashboard.labels"),
}

func width(ind string) string { return fmt.Sprint(len(ind)) }

// inline replaces just the sentinel, keeping the rest of the line.
func inline(code string) func(ind, prefix string) string {
	return func(_, prefix string) string { return prefix + " " + code }
}

// with renders line only when value is set; it replaces a whole line.
func with(value, line string) func(ind, prefix string) string {
	return func(ind, _ string) string {
		return ind + "{{- with " + value + " }}\n" + ind + line + "\n" + ind + "{{- end }}"
	}
}

// mapEntries adds the entries of a map value to the map the sentinel is in.
func mapEntries(value string) func(ind, prefix string) string {
	return func(ind, _ string) string {
		return ind + "{{- with " + value + " }}\n" + ind + "{{- toYaml . | nindent " + width(ind) + " }}\n" + ind + "{{- end }}"
	}
}

var sentinelRE = regexp.MustCompile(`__CHART_[A-Z_]+?__|__CHART_FILE_[^_\s]+__`)

func generate(objs []object) (*chart, error) {
	c := &chart{templates: map[string]string{}, files: map[string]string{}}
	namespace := ""
	for _, o := range objs {
		if o.kind() == "Namespace" {
			namespace = o.name()
		}
	}
	if namespace == "" {
		return nil, errors.New("the kustomize output has no Namespace")
	}
	seen := map[string]bool{}
	for _, o := range objs {
		if o.kind() == "Namespace" {
			// Helm installs into the release namespace: `helm install
			// --namespace ... --create-namespace`.
			continue
		}
		dir, cond, err := c.prepare(o)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.kind(), o.name(), err)
		}
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		text := string(b)
		if strings.Contains(text, "{{") {
			return nil, fmt.Errorf("%s %s contains {{, which Helm would read as template code", o.kind(), o.name())
		}
		text = strings.ReplaceAll(text, namespace, "{{ .Release.Namespace }}")
		if text, err = c.expand(text); err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.kind(), o.name(), err)
		}
		if cond != "" {
			text = "{{- if " + cond + " }}\n" + text + "{{- end }}\n"
		}
		path := filepath.Join("templates", dir, strings.ToLower(o.kind())+"-"+o.name()+".yaml")
		if seen[path] {
			return nil, fmt.Errorf("two objects map to %s", path)
		}
		seen[path] = true
		c.templates[path] = "{{- /* Code generated by hack/chart from config/. DO NOT EDIT. */}}\n" + text
	}
	if c.appVersion == "" {
		return nil, errors.New("the kustomize output has no manager Deployment")
	}
	return c, nil
}

// expand replaces the sentinel lines of a marshalled object.
func (c *chart) expand(text string) (string, error) {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		s := sentinelRE.FindString(line)
		if s == "" {
			continue
		}
		ind := line[:len(line)-len(strings.TrimLeft(line, " "))]
		prefix := strings.TrimRight(line[:strings.Index(line, s)], " ")
		if p := strings.TrimLeft(prefix, " "); strings.HasPrefix(p, "- ") || p == "-" && s != sExtraArgs {
			// A block cannot start a list item's map: the sentinel must not
			// sort first in its map.
			return "", fmt.Errorf("sentinel %s starts a list item", s)
		}
		if strings.HasPrefix(s, sFile) {
			file := strings.TrimSuffix(strings.TrimPrefix(s, sFile), "__")
			lines[i] = prefix + " |\n" + ind + "  {{- .Files.Get \"files/" + file + "\" | nindent " + width(ind+"  ") + " }}"
			continue
		}
		r, ok := replacements[s]
		if !ok {
			return "", fmt.Errorf("no replacement for %s", s)
		}
		lines[i] = r(ind, prefix)
	}
	return strings.Join(lines, "\n"), nil
}

// prepare puts the sentinels into o and returns the template's directory
// and the values switch it sits behind, if any.
func (c *chart) prepare(o object) (dir, cond string, err error) {
	meta := o.meta()
	labels, _ := meta["labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
	}
	// Helm's labels (managed-by, instance, chart) replace kustomize's.
	delete(labels, "app.kubernetes.io/managed-by")
	labels[sLabels] = ""
	meta["labels"] = labels

	switch o.kind() {
	case "CustomResourceDefinition":
		annotations, _ := meta["annotations"].(map[string]any)
		if annotations == nil {
			annotations = map[string]any{}
		}
		annotations[sKeepCRD] = ""
		meta["annotations"] = annotations
		return "crd", ".Values.crds.install", nil
	case "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding":
		return "rbac", "", nil
	case "Deployment":
		return "manager", "", c.prepareDeployment(o)
	case "Service":
		dir, err := c.prepareService(o, meta)
		return dir, "", err
	case "NetworkPolicy":
		return "network-policy", ".Values.networkPolicy.enabled", nil
	case "PodDisruptionBudget":
		return "manager", ".Values.podDisruptionBudget.enabled", nil
	case "ServiceMonitor":
		labels[sMonitorLabels] = ""
		spec, _ := o["spec"].(map[string]any)
		endpoints, _ := spec["endpoints"].([]any)
		for _, e := range endpoints {
			e.(map[string]any)["interval"] = sMonitorEvery
		}
		return "monitoring", ".Values.serviceMonitor.enabled", nil
	case "ConfigMap":
		if _, ok := labels["grafana_dashboard"]; !ok {
			return "", "", errors.New("the only ConfigMap the chart knows is the Grafana dashboard")
		}
		labels[sDashboardLbls] = ""
		data, _ := o["data"].(map[string]any)
		for k, v := range data {
			c.files[filepath.Join("files", k)] = fmt.Sprint(v)
			data[k] = sFile + k + "__"
		}
		return "monitoring", ".Values.grafanaDashboard.enabled", nil
	}
	return "", "", fmt.Errorf("hack/chart does not know what to do with a %s", o.kind())
}

// prepareService templates the callback Service's port, type and
// annotations, and returns the Service's template directory.
func (c *chart) prepareService(o object, meta map[string]any) (string, error) {
	spec, _ := o["spec"].(map[string]any)
	ports, _ := spec["ports"].([]any)
	if len(ports) != 1 {
		return "", errors.New("want one port on each Service")
	}
	port := ports[0].(map[string]any)
	if port["name"] != "callbacks" {
		return "metrics", nil
	}
	c.values.CallbackServicePort = port["port"]
	port["port"] = sServicePort
	c.values.CallbackServiceType = "ClusterIP"
	if t, ok := spec["type"].(string); ok {
		c.values.CallbackServiceType = t
	}
	spec["type"] = sServiceType
	meta[sServiceAnn] = ""
	return "callbacks", nil
}

func (c *chart) prepareDeployment(o object) error {
	spec := o["spec"].(map[string]any)
	c.values.Replicas = spec["replicas"]
	spec["replicas"] = sReplicas
	tmpl := spec["template"].(map[string]any)
	tmeta := tmpl["metadata"].(map[string]any)
	for key, sentinel := range map[string]string{"annotations": sPodAnnotations, "labels": sPodLabels} {
		m, _ := tmeta[key].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		m[sentinel] = ""
		tmeta[key] = m
	}
	pod := tmpl["spec"].(map[string]any)
	pod[sPodScheduling] = ""
	containers, _ := pod["containers"].([]any)
	if len(containers) != 1 {
		return errors.New("want one container in the manager Deployment")
	}
	ctr := containers[0].(map[string]any)
	image, _ := ctr["image"].(string)
	c.values.ImageRepository, c.values.ImageTag, c.values.ImageDigest = splitImage(image)
	if c.values.ImageTag == "" {
		return fmt.Errorf("the manager image %q has no tag", image)
	}
	c.appVersion = c.values.ImageTag
	ctr["image"] = sImage
	ctr["imagePullPolicy"] = sPullPolicy
	args, _ := ctr["args"].([]any)
	ctr["args"] = append(args, sExtraArgs)
	res, err := yaml.Marshal(ctr["resources"])
	if err != nil {
		return err
	}
	c.values.Resources = strings.TrimRight(indent(string(res), "  "), "\n")
	ctr["resources"] = sResources
	return nil
}

// splitImage splits name[:tag][@digest].
func splitImage(image string) (repo, tag, digest string) {
	repo, digest, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

func indent(s, ind string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = ind + l
		}
	}
	return strings.Join(lines, "\n")
}

// write replaces the generated files under dir.
func (c *chart) write(dir string) error {
	for _, sub := range []string{"templates", "files"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return err
		}
	}
	files := map[string]string{}
	for p, t := range c.templates {
		files[p] = t
	}
	for p, f := range c.files {
		files[p] = f
	}
	files["templates/_helpers.tpl"] = helpers
	files["templates/NOTES.txt"] = notes
	files[".helmignore"] = helmignore
	for name, t := range map[string]*template.Template{"Chart.yaml": chartYAML, "values.yaml": valuesYAML} {
		var b bytes.Buffer
		if err := t.Execute(&b, c); err != nil {
			return fmt.Errorf("rendering %s: %w", name, err)
		}
		files[name] = b.String()
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(files[p]), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Chart returns fields for the templates below.
func (c *chart) Name() string          { return chartName }
func (c *chart) Version() string       { return c.version }
func (c *chart) AppVersion() string    { return c.appVersion }
func (c *chart) Source() string        { return c.source }
func (c *chart) Values() valueDefaults { return c.values }

var chartYAML = template.Must(template.New("Chart.yaml").Parse(`# Code generated by hack/chart from config/. DO NOT EDIT.
apiVersion: v2
name: {{ .Name }}
description: Mirrors Tencent Cloud Chat and OpenIM groups into ChatGroup resources and runs Jobs when they change.
type: application
version: {{ .Version }}
appVersion: {{ printf "%q" .AppVersion }}
{{- with .Source }}
home: {{ . }}
sources:
- {{ . }}
{{- end }}
keywords:
- operator
- chat
- tencent-cloud-chat
- openim
`))

var valuesYAML = template.Must(template.New("values.yaml").Parse(`# Values of the chatgroup-operator chart. Code generated by hack/chart from
# config/ (make build-installer), with the kustomize configuration's values
# as defaults. DO NOT EDIT: change config/ or hack/chart.

# Manager Pods. Every replica serves callbacks; the reconcilers run on the
# elected leader.
replicaCount: {{ .Values.Replicas }}

image:
  repository: {{ .Values.ImageRepository }}
  # Empty means the chart's appVersion.
  tag: {{ printf "%q" .Values.ImageTag }}
  # Pins the image by digest (sha256:...), as release charts do.
  digest: {{ printf "%q" .Values.ImageDigest }}
  # Empty leaves Kubernetes' default: IfNotPresent for a tag or digest.
  pullPolicy: ""

imagePullSecrets: []

# Extra manager flags, for example --zap-log-level=debug
# (go run . -h lists them).
extraArgs: []

resources:
{{ .Values.Resources }}

podAnnotations: {}
podLabels: {}
nodeSelector: {}
tolerations: []
affinity: {}
priorityClassName: ""

# The Service the IM platforms post callbacks to. Put it behind an Ingress
# with TLS, or make it a LoadBalancer (annotations configure the cloud's).
callbacks:
  service:
    type: {{ .Values.CallbackServiceType }}
    port: {{ .Values.CallbackServicePort }}
    annotations: {}

# The CustomResourceDefinitions. keep leaves them (and so every ChatGroup)
# in place when the release is uninstalled.
crds:
  install: true
  keep: true

# Admits only callbacks, probes and metrics (from namespaces labelled
# metrics=enabled) to the manager Pods. Needs a CNI that enforces it.
networkPolicy:
  enabled: true

# Lets voluntary disruptions (node drains) take at most one manager Pod at
# a time, so that one replica keeps answering callbacks.
podDisruptionBudget:
  enabled: true

# A Prometheus Operator ServiceMonitor for the metrics endpoint. Needs the
# ServiceMonitor CRD; bind the chatgroup-metrics-reader ClusterRole to
# Prometheus's ServiceAccount.
serviceMonitor:
  enabled: false
  # Scrape interval, e.g. 30s (empty: Prometheus's default).
  interval: ""
  # Extra labels, e.g. to match your Prometheus's serviceMonitorSelector.
  labels: {}

# The Grafana dashboard, as a ConfigMap labelled for Grafana's dashboard
# sidecar (grafana_dashboard: "1").
grafanaDashboard:
  enabled: false
  # Extra labels, e.g. to match your sidecar's label selector.
  labels: {}
`))

const helmignore = `# Code generated by hack/chart from config/. DO NOT EDIT.
.DS_Store
*.swp
*.tmp
*~
`

const helpers = `{{- /* Code generated by hack/chart from config/. DO NOT EDIT. */}}

{{- /* Helm's labels, on every object. */}}
{{- define "chatgroup-operator.labels" -}}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* The manager image: the repository, then :tag and @digest when set. */}}
{{- define "chatgroup-operator.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{ .Values.image.repository }}{{ with $tag }}:{{ . }}{{ end }}{{ with .Values.image.digest }}@{{ . }}{{ end }}
{{- end }}
`

const notes = `chatgroup-operator {{ .Chart.AppVersion }} runs in the namespace {{ .Release.Namespace }}.

Point your IM platform's callbacks at the Service chatgroup-callbacks
(port {{ .Values.callbacks.service.port }}), through an Ingress with TLS. Then create a
ChatReceiver and give the platform its status.webhookPath:

  kubectl get chatreceivers -A -o custom-columns=NAME:.metadata.name,PATH:.status.webhookPath

The operator is built for the restricted Pod Security level; enforce it with:

  kubectl label namespace {{ .Release.Namespace }} pod-security.kubernetes.io/enforce=restricted
`
