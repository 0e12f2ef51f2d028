//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatgroup.dev/chatgroup-operator/internal/localcluster"
	"chatgroup.dev/chatgroup-operator/internal/managerproc"
)

// The documents whose ```sh blocks TestDocs_commandsWorkAsWritten runs, in
// this order; a new file under docs/ is picked up by itself.
func documents(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	slices.Sort(docs)
	return append([]string{filepath.Join(root, "README.md")}, docs...), nil
}

// runLocal is the command that starts the environment the other commands
// of a document use. The test runs it in the background, as terminal 1
// would, and stops it with SIGINT, as Ctrl-C would, at the end of the
// document.
const runLocal = "make run-local"

// notRun lists the documented commands that this test cannot run, and why.
// Every entry must still be in a document, so the list cannot go stale.
var notRun = map[string]string{
	"make test":     "runs this test itself",
	"make test-e2e": "runs this test itself",
	"make bench": "about 15 minutes of saturating load: a benchmark, run by hand, whose figures are in " +
		"docs/benchmarks.md; its parts are checked below with -h",
	// Install (README.md) and docs/install.md. The image, the installer
	// and the chart themselves are tested: internal/ociimage (build,
	// reproducibility, push to a loopback registry), test/integration's
	// chart tests (helm template against dist/install.yaml and
	// config/monitoring, server-side dry runs) and the e2e test (the
	// manager taken from the image).
	"kubectl apply --server-side -f <release-url>/install.yaml":                                                                      "needs a published release (the placeholder)",
	"helm install chatgroup-operator <release-url>/chatgroup-operator-<version>.tgz --namespace chatgroup-system --create-namespace": "needs a published release (the placeholders)",
	"kind load image-archive bin/image/image.tar": "needs kind and a kind cluster (a container engine); " +
		"the image's binary is what the e2e test runs",
	"make release push VERSION=v0.1.0 REGISTRY=<registry>/<team>": "needs the user's registry (the placeholder) " +
		"and a clean checkout, and rewrites dist/; ociimage's push test uses a loopback registry",
	"kubectl apply --server-side -k config/monitoring": "needs a cluster with the Prometheus Operator's CRDs; " +
		"the chart tests compare config/monitoring with the chart and dry-run a ServiceMonitor",
	"kubectl label namespace monitoring metrics=enabled": "needs a cluster with a Prometheus in the namespace monitoring",
	"kubectl create clusterrolebinding chatgroup-metrics-prometheus --clusterrole=chatgroup-metrics-reader --serviceaccount=monitoring:prometheus-k8s": "needs a cluster with a Prometheus in the namespace monitoring",
}

// flagsOnly lists the documented commands that take minutes of load or a
// full benchmark run. The test runs each with -h appended: every flag it
// shows must exist (a wrong flag exits 2), and the command must start.
var flagsOnly = map[string]string{
	"go run ./hack/bench -only hot -memory-groups 0":    "a load benchmark of about a minute",
	"go run ./hack/bench -only memory":                  "creates and caches 10,000 ChatGroups",
	"go run ./hack/bench -only status -memory-groups 0": "ChatGroup write cost, up to a 100,000-member group: several minutes",
	"go run ./hack/bench -cpuprofile cpu.prof":          "every benchmark scenario, about 15 minutes",
}

// expectation is the documented result of a command: patterns its output
// must match, and its exit code (usually 0). When eventually is set the
// result may take a few seconds to appear (a Job running to completion),
// and the test runs the command again, as a user would, until it does.
type expectation struct {
	patterns   []*regexp.Regexp
	eventually bool
	exitCode   int
}

func matches(patterns ...string) expectation {
	e := expectation{}
	for _, p := range patterns {
		e.patterns = append(e.patterns, regexp.MustCompile(p))
	}
	return e
}

func eventually(e expectation) expectation {
	e.eventually = true
	return e
}

// exits documents a command whose answer is its exit code, such as
// kubectl auth can-i, which exits 1 when the answer is no.
func exits(code int, e expectation) expectation {
	e.exitCode = code
	return e
}

// expected holds the documented results, by command. A command not listed
// here must exit 0.
//
// The operator's ServiceAccount may not list Secrets (security audit H1):
// docs/security.md shows the check against the installed RBAC.
var expected = map[string]expectation{
	// run-local's sample receivers resync from its fake providers, so
	// send-callback changes the fake's truth before it sends.
	"go run ./hack/send-callback --receiver default/tencent --command create --group '@TGS#2J4SZEAEL' --users leckie,bob,peter": matches(
		`(?m)^Changed group @TGS#2J4SZEAEL in the fake provider's truth at http://127\.0\.0\.1:\d+$`, `(?m)^200 OK$`, `"ActionStatus":"OK"`),
	"go run ./hack/send-callback --receiver default/tencent --command quit --group '@TGS#2J4SZEAEL' --users peter": matches(
		`(?m)^200 OK$`),
	"go run ./hack/send-callback --receiver default/tencent --command disband --group '@TGS#2J4SZEAEL' --owner leckie": matches(
		`(?m)^200 OK$`),
	"go run ./hack/send-callback --receiver default/openim --command join --group 3188466436 --users u1,u2": matches(
		`(?s)callbackAfterJoinGroupCommand.*200 OK.*callbackAfterJoinGroupCommand.*200 OK`, `"errCode":0`),
	// The table after the quit, and again after the join whose callback was
	// dropped: the group exists with two members.
	"bin/k8s/kubectl get chatgroups": matches(
		`(?m)^NAME\s+PROVIDER\s+GROUP\s+TYPE\s+MEMBERS\s+DISBANDED\s+LAST EVENT\s+AGE$`,
		`(?m)^tencent-tgs-2j4szeael-[0-9a-f]+\s+Tencent\s+@TGS#2J4SZEAEL\s+Public\s+2\s+false\s+MembersLeft\s+\S+$`),
	// A join whose callback is lost: only the fake provider learns of it.
	"go run ./hack/send-callback --receiver default/tencent --command join --group '@TGS#2J4SZEAEL' --users carol --drop": matches(
		`(?m)^Changed group @TGS#2J4SZEAEL in the fake provider's truth at http://127\.0\.0\.1:\d+$`,
		`(?m)^Dropped 1 callback\(s\) \(--drop\)`),
	"bin/k8s/kubectl wait chatreceiver/tencent --for=jsonpath='{.status.lastSync.requested}'=quickstart-1 --timeout=60s": matches(
		`condition met`),
	// After the requested pass: carol is back, by a journaled
	// MembersJoined, and the group is Synced (its reconciler sets the
	// condition from status.lastSync, so it may take a moment).
	"bin/k8s/kubectl get chatgroups -o wide": eventually(matches(
		`(?m)^tencent-tgs-2j4szeael-[0-9a-f]+\s+Tencent\s+@TGS#2J4SZEAEL\s+Public\s+3\s+false\s+MembersJoined\s+\S+\s+leckie\s+True\s+True$`)),
	"bin/k8s/kubectl get events --field-selector reason=DriftCorrected": eventually(matches(
		`(?m)\sDriftCorrected\s+chatgroup/tencent-tgs-2j4szeael-[0-9a-f]+\s+Resync found drift: MembersJoined \(carol\)$`)),
	// An OpenIM invitation sends no callback: a requested pass finds u3.
	"go run ./hack/send-callback --receiver default/openim --command join --group 3188466436 --users u3 --drop": matches(
		`(?m)^Changed group 3188466436 in the fake provider's truth at http://127\.0\.0\.1:\d+$`,
		`(?m)^Dropped 1 callback\(s\) \(--drop\)`),
	"bin/k8s/kubectl wait chatreceiver/openim --for=jsonpath='{.status.lastSync.requested}'=quickstart-2 --timeout=60s": matches(
		`condition met`),
	// The pass also corrects the type, which join callbacks do not carry,
	// so the last event is MembersJoined or InfoChanged.
	"bin/k8s/kubectl get chatgroups -l im.chatgroup.dev/receiver=openim -o wide": eventually(matches(
		`(?m)^openim-3188466436-[0-9a-f]+\s+OpenIM\s+3188466436\s+Work\s+3\s+false\s+(MembersJoined|InfoChanged)\s+\S+\s+True\s+True$`)),
	// A 300-member group lives in member slices, listed by its label.
	`go run ./hack/send-callback --receiver default/tencent --command create --group '@TGS#BIG' --users "$(seq -s, -f 'user%03g' 1 300)"`: matches(
		`(?m)^200 OK$`),
	"bin/k8s/kubectl get chatgroupmemberslices -l im.chatgroup.dev/chatgroup=$GROUP": matches(
		`(?m)^NAME\s+GROUP\s+INDEX\s+MEMBERS\s+SEQ\s+AGE$`,
		`(?m)^tencent-tgs-big-[0-9a-f]+-\d+-0\s+tencent-tgs-big-[0-9a-f]+\s+0\s+\d+\s+1\s`,
		`(?m)^tencent-tgs-big-[0-9a-f]+-\d+-4\s+tencent-tgs-big-[0-9a-f]+\s+4\s+\d+\s+1\s`),
	// 300 distinct user IDs, each listed exactly once.
	`bin/k8s/kubectl get chatgroupmemberslices -l im.chatgroup.dev/chatgroup=$GROUP -o jsonpath='{.items[*].members[*].userID}' | tr ' ' '\n' | sort | uniq -c | awk '$1 == 1' | wc -l`: matches(
		`(?m)^300$`),
	"bin/k8s/kubectl get chatgroup $GROUP": matches(
		`(?m)^tencent-tgs-big-[0-9a-f]+\s+Tencent\s+@TGS#BIG\s+Public\s+300\s+false\s+Created\s`),
	// After the disband: the sample cleanup Job has completed, and the
	// group is disbanded and Ready.
	"bin/k8s/kubectl get jobs,chatgroups -o wide": eventually(matches(
		`(?m)^job\.batch/cleanup-[0-9a-f]+\s+Complete\s+1/1\s`,
		`(?m)^chatgroup\.im\.chatgroup\.dev/tencent-tgs-2j4szeael-[0-9a-f]+\s+Tencent\s+@TGS#2J4SZEAEL\s+Public\s+3\s+true\s+Disbanded\s+\S+\s+leckie\s+True`,
	)),
	"go test ./internal/provider/... ./internal/groupstate/ -run '^$' -bench . -benchmem": matches(`(?m)^BenchmarkReduce`, `(?m)^ok\s`),
	"bin/k8s/kubectl auth can-i list secrets --all-namespaces --as=system:serviceaccount:chatgroup-system:chatgroup-controller-manager": exits(1, matches(
		`(?m)^no$`)),
	"bin/k8s/kubectl auth can-i get secrets --namespace default --as=system:serviceaccount:chatgroup-system:chatgroup-controller-manager": matches(
		`(?m)^yes$`),
	"bin/k8s/kubectl auth can-i create jobs --all-namespaces --as=system:serviceaccount:chatgroup-system:chatgroup-controller-manager": exits(1, matches(
		`(?m)^no$`)),
	"go run ./hack/loadgen --kubeconfig bin/local/kubeconfig --receiver default/tencent --url http://127.0.0.1:8082 --events 2000 --groups 100 --rate 200": matches(
		`Verification: 100 groups: 0 lost, 0 phantom members, 0 duplicate effects, 0 groups undercounted`),
}

// TestDocs_commandsWorkAsWritten runs every command of every ```sh block in
// README.md and docs/*.md, in order and exactly as written, the way a new
// user would: `make run-local` in the background, the other commands in a
// shell from the repository root whose exports carry over from one command
// to the next. Each must exit 0 and show its documented result. The shell
// starts without KUBECONFIG and with an empty HOME, so a command that
// forgets the documented export fails instead of reaching a real cluster.
// `kubectl` is bin/k8s/kubectl, as if installed.
func TestDocs_commandsWorkAsWritten(t *testing.T) {
	root, err := localcluster.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	docs, err := documents(root)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, doc := range docs {
		cmds, err := shellCommands(doc)
		if err != nil {
			t.Fatal(err)
		}
		if len(cmds) == 0 {
			continue
		}
		rel, _ := filepath.Rel(root, doc)
		t.Run(rel, func(t *testing.T) {
			sh := newUserShell(t, root)
			for _, c := range cmds {
				seen[c.text] = true
				if !t.Run(fmt.Sprintf("line %d: %s", c.line, c.text), func(t *testing.T) { sh.run(t, c) }) {
					t.FailNow() // later commands build on this one
				}
			}
			sh.stopRunLocal(t)
		})
	}
	for _, list := range []map[string]string{notRun, flagsOnly} {
		for cmd := range list {
			if !seen[cmd] {
				t.Errorf("%q is listed as not runnable, but no document shows it any more: remove it from the list", cmd)
			}
		}
	}
	for cmd := range expected {
		if !seen[cmd] {
			t.Errorf("%q has an expected result, but no document shows it any more", cmd)
		}
	}
}

// docCommand is one command of a document: continuation lines joined, the
// trailing comment removed.
type docCommand struct {
	line int
	text string
}

// shellCommands returns the commands of path's ```sh blocks.
func shellCommands(path string) ([]docCommand, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var cmds []docCommand
	in, pending, start := false, "", 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case !in:
			in = strings.TrimSpace(line) == "```sh"
		case strings.HasPrefix(strings.TrimSpace(line), "```"):
			if pending != "" {
				return nil, fmt.Errorf("%s:%d: the block ends in a continuation line", path, n)
			}
			in = false
		default:
			if pending == "" {
				start = n
			}
			if cont, ok := strings.CutSuffix(line, `\`); ok {
				pending += strings.TrimSpace(cont) + " "
				continue
			}
			text := strings.TrimSpace(stripComment(pending + strings.TrimSpace(line)))
			pending = ""
			if text != "" {
				cmds = append(cmds, docCommand{line: start, text: text})
			}
		}
	}
	return cmds, sc.Err()
}

// stripComment removes a shell comment: a # at the start of a word,
// outside quotes.
func stripComment(s string) string {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

// userShell runs a document's commands as a user at a terminal would.
type userShell struct {
	root string
	env  []string
	// envFile carries the shell's exports from one command to the next.
	envFile string
	// runLocal is the background `make run-local`, while it runs.
	runLocal *exec.Cmd
	output   *lockedBuffer
	exited   chan error
}

func newUserShell(t *testing.T, root string) *userShell {
	t.Helper()
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + filepath.Join(root, "bin", "k8s") + string(os.PathListSeparator) + os.Getenv("PATH")}
	// Keep Go's caches: HOME is empty.
	for _, name := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "GONOSUMDB", "GOSUMDB"} {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		env = append(env, name+"="+strings.TrimSpace(string(out)))
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "GO") && !slices.Contains([]string{"HOME", "PATH", "KUBECONFIG", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "RUN_LOCAL_FLAGS"}, name) {
			env = append(env, kv)
		}
	}
	envFile := filepath.Join(t.TempDir(), "exports")
	if err := os.WriteFile(envFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sh := &userShell{root: root, env: env, envFile: envFile}
	t.Cleanup(func() { sh.killRunLocal(t) })
	return sh
}

func (sh *userShell) run(t *testing.T, c docCommand) {
	if reason, ok := notRun[c.text]; ok {
		t.Skipf("not run: %s", reason)
	}
	if c.text == runLocal {
		sh.startRunLocal(t)
		return
	}
	text := c.text
	if reason, ok := flagsOnly[c.text]; ok {
		t.Logf("run with -h only: %s", reason)
		text += " -h"
	}
	want := expected[c.text]
	deadline := time.Now().Add(90 * time.Second)
	for attempt := 1; ; attempt++ {
		out, err := sh.exec(t, text)
		missing := missingPatterns(out, want.patterns)
		switch {
		case exitCode(err) != want.exitCode:
			t.Fatalf("%s: exit code %d (%v), documented %d\n%s", text, exitCode(err), err, want.exitCode, out)
		case len(missing) == 0:
			t.Logf("$ %s\n%s", text, out)
			return
		case !want.eventually || time.Now().After(deadline):
			t.Fatalf("%s: the documented result is missing after %d runs: no match for %q in:\n%s", text, attempt, missing, out)
		}
		time.Sleep(time.Second)
	}
}

// exitCode is a command's exit code: 0 without an error, -1 when it did
// not exit on its own.
func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		return -1
	}
}

func missingPatterns(out []byte, patterns []*regexp.Regexp) []string {
	var missing []string
	for _, p := range patterns {
		if !p.Match(out) {
			missing = append(missing, p.String())
		}
	}
	return missing
}

// exec runs one command in bash with the exports of the commands before it.
func (sh *userShell) exec(t *testing.T, text string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	script := fmt.Sprintf("source %q\n%s\nstatus=$?\nexport -p > %q\nexit $status\n", sh.envFile, text, sh.envFile)
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = sh.root, sh.env
	return cmd.CombinedOutput()
}

// startRunLocal starts `make run-local` in its own process group, as a
// terminal would, and waits until it says the operator is running.
func (sh *userShell) startRunLocal(t *testing.T) {
	t.Helper()
	if sh.runLocal != nil {
		t.Fatal("make run-local is already running")
	}
	waitForFreeAddr(t, runLocalCallbackAddr)
	cmd := exec.Command("bash", "-c", runLocal)
	// The documented commands expect every callback to be acknowledged; on
	// a loaded CI machine a commit can outlast the default 1.5 s budget.
	// make reads RUN_LOCAL_FLAGS from the environment (docs/quickstart.md
	// shows the variable).
	cmd.Dir, cmd.Env = sh.root, append(slices.Clone(sh.env), "RUN_LOCAL_FLAGS=--manager-flag="+slowMachineCommitBudget)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sh.output = &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = sh.output, sh.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sh.runLocal, sh.exited = cmd, make(chan error, 1)
	go func() { sh.exited <- cmd.Wait() }()

	const ready = "The operator is running."
	deadline := time.After(10 * time.Minute) // the first run builds the control plane
	for !strings.Contains(sh.output.String(), ready) {
		select {
		case err := <-sh.exited:
			sh.runLocal = nil
			t.Fatalf("make run-local exited before it was ready: %v\n%s", err, sh.output)
		case <-deadline:
			t.Fatalf("make run-local did not print %q within 10 minutes:\n%s", ready, sh.output)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Logf("make run-local is ready:\n%s", sh.output)
}

// runLocalCallbackAddr is where make run-local serves callbacks, and where
// the documented commands send them.
const runLocalCallbackAddr = "127.0.0.1:8082"

// waitForFreeAddr waits, up to ten minutes, until nothing listens on addr:
// the docs test of another checkout, or a developer's make run-local, may
// hold it for a while.
func waitForFreeAddr(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for logged := false; ; logged = true {
		err := managerproc.CheckAddrFree(addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("make run-local needs %s: %v", addr, err)
		}
		if !logged {
			t.Logf("waiting for %s to be free (another make run-local?): %v", addr, err)
		}
		time.Sleep(2 * time.Second)
	}
}

// stopRunLocal presses Ctrl-C: SIGINT to the process group. run-local must
// stop the operator and the control plane, say so, and leave no process.
func (sh *userShell) stopRunLocal(t *testing.T) {
	t.Helper()
	if sh.runLocal == nil {
		return
	}
	_ = syscall.Kill(-sh.runLocal.Process.Pid, syscall.SIGINT)
	select {
	case err := <-sh.exited:
		// make reports the interrupt as an error whatever run-local did;
		// what run-local printed is checked below.
		t.Logf("make run-local exited after SIGINT: %v", err)
	case <-time.After(90 * time.Second):
		t.Errorf("make run-local did not stop within 90 s of SIGINT:\n%s", sh.output)
	}
	sh.killRunLocal(t)
	if out := sh.output.String(); !strings.Contains(out, "run-local: Stopped; logs are in bin/local/logs") {
		t.Errorf("make run-local did not report a clean stop:\n%s", out)
	}
	if left := processesUsing(filepath.Join(sh.root, "bin", "local")); len(left) > 0 {
		t.Errorf("processes left behind after Ctrl-C: %v", left)
	}
}

// killRunLocal kills what is left of run-local's process group, once.
func (sh *userShell) killRunLocal(t *testing.T) {
	if sh.runLocal == nil {
		return
	}
	if err := syscall.Kill(-sh.runLocal.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Logf("killing make run-local: %v", err)
	}
	sh.runLocal = nil
}

// processesUsing lists the processes whose command line names dir or a
// file in it: the local control plane and the operator.
func processesUsing(dir string) []string {
	var found []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range cmdlines {
		raw, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(raw, []byte(dir+string(filepath.Separator))) {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		found = append(found, fmt.Sprintf("%s (%s)", filepath.Base(path[:len(path)-len("/cmdline")]), strings.Join(args, " ")))
	}
	return found
}

// lockedBuffer collects a background process's output while the test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
