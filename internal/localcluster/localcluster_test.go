package localcluster

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestWriteKwokStages(t *testing.T) {
	g := NewWithT(t)
	module := t.TempDir()
	files := map[string]string{
		"node/fast/node-initialize.yaml":     "kind: Stage\nmetadata:\n  name: node-initialize\n",
		"node/fast/kustomization.yaml":       "kind: Kustomization\n",
		"node/heartbeat/node-heartbeat.yaml": "kind: Stage\nmetadata:\n  name: node-heartbeat\n",
		"pod/fast/pod-ready.yaml":            "kind: Stage\nmetadata:\n  name: pod-ready\n",
		"pod/fast/pod-complete.yaml":         "kind: Stage\nmetadata:\n  name: pod-complete\n",
		"pod/fast/kustomization.yaml":        "kind: Kustomization\n",
		"pod/general/pod-create.yaml":        "kind: Stage\nmetadata:\n  name: slow\n",
	}
	for name, content := range files {
		path := filepath.Join(module, "kustomize", "stage", name)
		g.Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
		g.Expect(os.WriteFile(path, []byte(content), 0o644)).To(Succeed())
	}

	dst := filepath.Join(t.TempDir(), "stages.yaml")
	g.Expect(writeKwokStages(module, dst)).To(Succeed())
	b, err := os.ReadFile(dst)
	g.Expect(err).NotTo(HaveOccurred())
	docs := strings.Split(string(b), "---\n")
	g.Expect(docs).To(HaveLen(4), "the fast node and pod stages and the heartbeat, without kustomizations: %s", b)
	g.Expect(docs[0]).To(ContainSubstring("name: node-initialize"))
	g.Expect(docs[1]).To(ContainSubstring("name: node-heartbeat"))
	g.Expect(docs[2]).To(ContainSubstring("name: pod-complete"))
	g.Expect(docs[3]).To(ContainSubstring("name: pod-ready"))
}

func TestWriteKwokStages_missingStage(t *testing.T) {
	g := NewWithT(t)
	err := writeKwokStages(t.TempDir(), filepath.Join(t.TempDir(), "stages.yaml"))
	g.Expect(err).To(MatchError(ContainSubstring("no kwok stage matches node/fast/node-initialize.yaml")))
}

func TestProcess_Stop(t *testing.T) {
	t.Run("a process that exits on SIGTERM stops within the grace period", func(t *testing.T) {
		g := NewWithT(t)
		p, err := StartProcess("sleeper", filepath.Join(t.TempDir(), "sleeper.log"), "/bin/sh", "-c", "exec sleep 60")
		g.Expect(err).NotTo(HaveOccurred())
		// Stop fails when it had to kill the process after the grace
		// period, so success means SIGTERM stopped it.
		begin := time.Now()
		g.Expect(p.Stop(time.Minute)).To(Succeed())
		t.Logf("stopped %.2fs after SIGTERM", time.Since(begin).Seconds())
	})

	t.Run("a process ignoring SIGTERM is killed with its children", func(t *testing.T) {
		g := NewWithT(t)
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "child.pid")
		// The shell ignores SIGTERM and starts a grandchild that would
		// outlive it if only the shell were signalled. The PID file
		// appears whole (renamed into place), never empty.
		script := "trap '' TERM; sleep 60 & echo $! > " + pidFile + ".tmp; mv " + pidFile + ".tmp " + pidFile + "; wait"
		p, err := StartProcess("stubborn", filepath.Join(dir, "stubborn.log"), "/bin/sh", "-c", script)
		g.Expect(err).NotTo(HaveOccurred())
		g.Eventually(func() error { _, err := os.Stat(pidFile); return err }).WithTimeout(30 * time.Second).Should(Succeed())
		b, err := os.ReadFile(pidFile)
		g.Expect(err).NotTo(HaveOccurred())
		grandchild, err := strconv.Atoi(strings.TrimSpace(string(b)))
		g.Expect(err).NotTo(HaveOccurred())

		g.Expect(p.Stop(300 * time.Millisecond)).To(MatchError(ContainSubstring("was killed")))
		g.Eventually(func() error { return syscall.Kill(grandchild, 0) }).WithTimeout(30*time.Second).
			Should(MatchError(syscall.ESRCH), "the grandchild is gone too")
	})

	t.Run("stopping an exited process is a no-op", func(t *testing.T) {
		g := NewWithT(t)
		log := filepath.Join(t.TempDir(), "false.log")
		p, err := StartProcess("false", log, "/bin/sh", "-c", "echo boom; exit 3")
		g.Expect(err).NotTo(HaveOccurred())
		<-p.Done()
		g.Expect(p.Stop(time.Second)).To(Succeed())
		g.Expect(p.ExitError()).To(MatchError(And(ContainSubstring("exit status 3"), ContainSubstring("boom"))))
	})
}

func TestLockStateDir(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	first, err := lockStateDir(dir)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = lockStateDir(dir)
	g.Expect(err).To(MatchError(ContainSubstring("in use by another local cluster")))
	first.release()
	again, err := lockStateDir(dir)
	g.Expect(err).NotTo(HaveOccurred())
	again.release()
}

func TestFindRepoRoot(t *testing.T) {
	g := NewWithT(t)
	root, err := FindRepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(filepath.Join(root, "internal", "localcluster")).To(BeADirectory())
}

func TestTail(t *testing.T) {
	g := NewWithT(t)
	path := filepath.Join(t.TempDir(), "x.log")
	g.Expect(os.WriteFile(path, []byte("1\n2\n3\n4\n"), 0o644)).To(Succeed())
	g.Expect(Tail(path, 2)).To(Equal("    3\n    4\n"))
	g.Expect(Tail(filepath.Join(t.TempDir(), "missing"), 2)).To(ContainSubstring("cannot read"))
}
