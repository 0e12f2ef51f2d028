//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/localcluster"
	"chatgroup.dev/chatgroup-operator/internal/managerproc"
)

// The identity dist/install.yaml creates for the operator (config/default
// adds the chatgroup- prefix and the chatgroup-system namespace).
const (
	operatorNamespace      = "chatgroup-system"
	operatorServiceAccount = "chatgroup-controller-manager"
	operatorDeployment     = "chatgroup-controller-manager"
)

// slowMachineCommitBudget lets the manager wait longer than the default
// 1.5 s for a commit before it answers 503: the test expects every callback
// to be acknowledged, and a loaded CI machine can be slow. The 503 reply is
// tested in webhookserver.
const slowMachineCommitBudget = "--callback-commit-budget=30s"

// suite is the running environment: the cluster, the installed operator
// and the manager process.
type suite struct {
	root    string
	cluster *localcluster.Cluster
	// admin is a direct client with the admin identity, for assertions.
	admin client.Client
	http  *http.Client
	// mgrOpts start the manager; starts counts them, for the log names.
	mgrOpts managerproc.Options
	starts  int
	mgr     *managerproc.Manager
}

// setUp starts the control plane, installs the operator with the least
// privileged identity it ships with, starts the manager binary taken from
// the image `make image` builds, and applies the samples.
func setUp(t *testing.T) *suite {
	t.Helper()
	g := NewWithT(t)
	root, err := localcluster.FindRepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	s := &suite{root: root, http: &http.Client{Timeout: 10 * time.Second}}

	s.cluster, err = localcluster.Start(context.Background(), localcluster.Options{
		RepoRoot: root,
		StateDir: filepath.Join(root, "bin", "e2e"),
		Logf:     t.Logf,
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(s.tearDown(t))

	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	g.Expect(imv1.AddToScheme(scheme)).To(Succeed())
	s.admin, err = client.New(s.cluster.RESTConfig, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())

	s.install(t)
	kubeconfig := s.operatorKubeconfig(t)
	s.buildManager(t, kubeconfig)
	s.startManager(t)
	s.kubectl(t, "create", "namespace", namespace)
	g.Expect(s.cluster.ApplySamples(t.Context(), filepath.Join(root, "config", "samples"), namespace)).To(Succeed())
	return s
}

func (s *suite) tearDown(t *testing.T) func() {
	return func() {
		logFailure(t, s.cluster)
		if s.mgr != nil {
			if err := s.mgr.Stop(15 * time.Second); err != nil {
				t.Errorf("stopping the manager: %v", err)
			}
		}
		if err := s.cluster.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	}
}

// kubectl runs the cluster's kubectl as admin and returns its output.
func (s *suite) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.cluster.Kubectl(t.Context(), args...)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return string(out)
}

// install applies the rendered installer as a user would. Its Deployment
// is scaled to zero: the manager runs out of cluster from this build, and
// the kwok node would only pretend to run the image.
func (s *suite) install(t *testing.T) {
	t.Helper()
	s.kubectl(t, "apply", "--server-side", "-f", filepath.Join(s.root, "dist", "install.yaml"))
	s.kubectl(t, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/chatgroups.im.chatgroup.dev", "crd/chatreceivers.im.chatgroup.dev", "crd/chatgrouptriggers.im.chatgroup.dev",
		"crd/chatgroupmemberslices.im.chatgroup.dev")
	s.kubectl(t, "scale", "--namespace", operatorNamespace, "deployment/"+operatorDeployment, "--replicas=0")
}

// operatorKubeconfig writes a kubeconfig for the installer's
// ServiceAccount, with a token from the TokenRequest API, so the manager
// has exactly the permissions dist/install.yaml grants it.
func (s *suite) operatorKubeconfig(t *testing.T) string {
	t.Helper()
	g := NewWithT(t)
	token := strings.TrimSpace(s.kubectl(t, "create", "token", operatorServiceAccount,
		"--namespace", operatorNamespace, "--duration=2h"))
	g.Expect(token).NotTo(BeEmpty())

	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{
		Server:                   s.cluster.RESTConfig.Host,
		CertificateAuthorityData: s.cluster.RESTConfig.CAData,
	}
	cfg.AuthInfos["operator"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["operator"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "operator"}
	cfg.CurrentContext = "operator"
	path := filepath.Join(s.cluster.StateDir, "operator.kubeconfig")
	g.Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	t.Cleanup(func() { _ = os.Remove(path) })

	// The identity works, and is no more than the installer's RBAC.
	can := func(verb, resource string, flags ...string) bool {
		args := append([]string{"--kubeconfig=" + path, "auth", "can-i", verb, resource}, flags...)
		// can-i exits 1 for "no"; the answer is the output either way.
		out, _ := exec.CommandContext(t.Context(), s.cluster.KubectlPath(), args...).Output()
		return strings.TrimSpace(string(out)) == "yes"
	}
	g.Expect(can("patch", "chatgroups.im.chatgroup.dev", "--subresource=status", "--namespace", namespace)).To(BeTrue())
	// Trigger Jobs are created as the trigger's ServiceAccount (security
	// M7), and receiver Secrets are read by name, never listed (H1).
	g.Expect(can("impersonate", "serviceaccounts", "--namespace", namespace)).To(BeTrue())
	g.Expect(can("create", "jobs.batch", "--namespace", namespace)).To(BeFalse())
	g.Expect(can("list", "secrets", "--all-namespaces")).To(BeFalse())
	g.Expect(can("watch", "secrets", "--all-namespaces")).To(BeFalse())
	g.Expect(can("delete", "namespaces")).To(BeFalse())
	g.Expect(can("create", "secrets", "--namespace", namespace)).To(BeFalse())
	return path
}

func (s *suite) buildManager(t *testing.T, kubeconfig string) {
	t.Helper()
	binary := managerFromImage(t, s.root, s.cluster.StateDir)
	callbackAddr, err := managerproc.FreeLoopbackAddr()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	s.mgrOpts = managerproc.Options{Binary: binary, Kubeconfig: kubeconfig, CallbackAddr: callbackAddr,
		Args: []string{slowMachineCommitBudget}}
}

// startManager starts the manager on the same callback address each time,
// as a restarted Pod behind a Service would be.
func (s *suite) startManager(t *testing.T) {
	t.Helper()
	g := NewWithT(t)
	opts := s.mgrOpts
	var err error
	opts.ProbeAddr, err = managerproc.FreeLoopbackAddr(opts.CallbackAddr)
	g.Expect(err).NotTo(HaveOccurred())
	s.starts++
	opts.LogPath = filepath.Join(s.cluster.LogDir, "manager-"+strconv.Itoa(s.starts)+".log")
	begin := time.Now()
	s.mgr, err = managerproc.Start(t.Context(), opts)
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("Manager ready in %.1fs (log %s)", time.Since(begin).Seconds(), opts.LogPath)
}

// killManager kills the manager with SIGKILL, like a crash.
func (s *suite) killManager(t *testing.T) {
	t.Helper()
	NewWithT(t).Expect(s.mgr.Kill()).To(Succeed())
	s.mgr = nil
}

// post sends a request and returns the status and body.
func (s *suite) post(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := s.http.Do(req)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, body
}

// row is the expected state of every group in `kubectl get chatgroups`.
type row struct {
	members, disbanded, lastEvent string
}

func (r row) String() string {
	return fmt.Sprintf("members=%s disbanded=%s lastEvent=%s", r.members, r.disbanded, r.lastEvent)
}

// chatGroupColumns is the header of `kubectl get chatgroups`: the printer
// columns of the ChatGroup CRD.
var chatGroupColumns = []string{"NAME", "PROVIDER", "GROUP", "TYPE", "MEMBERS", "DISBANDED", "LAST EVENT", "AGE"}

// expectTable runs `kubectl get chatgroups` and checks the header and each
// group's row. Callbacks are acknowledged only after their event is stored,
// so the table must already show it: there is no waiting here.
func (s *suite) expectTable(t *testing.T, groups []*group, want row) {
	t.Helper()
	g := NewWithT(t)
	out := s.kubectl(t, "get", "chatgroups", "--namespace", namespace)
	header, rows, err := parseTable(out, chatGroupColumns)
	g.Expect(err).NotTo(HaveOccurred(), "kubectl get chatgroups:\n%s", out)
	g.Expect(header).To(Equal(strings.Join(chatGroupColumns, " ")), "exactly these columns, in this order")
	g.Expect(rows).To(HaveLen(len(groups)), "kubectl get chatgroups:\n%s", out)
	for _, gr := range groups {
		r, ok := rows[gr.name]
		g.Expect(ok).To(BeTrue(), "row for %s in:\n%s", gr.name, out)
		g.Expect(r).To(Equal(map[string]string{
			"NAME": gr.name, "PROVIDER": string(gr.provider), "GROUP": gr.id, "TYPE": gr.groupType,
			"MEMBERS": want.members, "DISBANDED": want.disbanded, "LAST EVENT": want.lastEvent, "AGE": r["AGE"],
		}), "%s, want %s, in:\n%s", gr.name, want, out)
		g.Expect(r["AGE"]).NotTo(BeEmpty())
	}
}

// parseTable splits kubectl's table output into columns at the positions
// of the header's titles (titles and values may contain spaces, and empty
// values leave no field). It returns the header with its spacing
// normalised, and the rows by NAME.
func parseTable(out string, titles []string) (string, map[string]map[string]string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	header := strings.Join(strings.Fields(lines[0]), " ")
	starts := make([]int, len(titles))
	from := 0
	for i, title := range titles {
		idx := strings.Index(lines[0][from:], title)
		if idx < 0 {
			return header, nil, errors.New("header lacks column " + title)
		}
		starts[i] = from + idx
		from = starts[i] + len(title)
	}
	rows := map[string]map[string]string{}
	for _, line := range lines[1:] {
		r := map[string]string{}
		for i, title := range titles {
			end := len(line)
			if i+1 < len(starts) {
				end = min(starts[i+1], len(line))
			}
			r[title] = ""
			if starts[i] < end {
				r[title] = strings.TrimSpace(line[starts[i]:end])
			}
		}
		rows[r["NAME"]] = r
	}
	return header, rows, nil
}
