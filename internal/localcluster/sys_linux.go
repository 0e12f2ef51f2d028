package localcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr puts the child in its own process group and has the kernel
// kill it if this process dies without stopping it (SIGKILL, a crash), so
// that no control-plane process outlives its parent. Pdeathsig fires when
// the OS thread that forked the child exits; the Go runtime keeps its
// threads alive unless a goroutine exits while locked to one, which nothing
// here does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// SignalOnParentExit asks the kernel to send sig to this process when its
// parent exits. A command started through `go run` or make is not told when
// that parent is killed with SIGTERM; with this it still shuts its cluster
// down instead of running on, orphaned.
func SignalOnParentExit(sig syscall.Signal) error {
	parent := os.Getppid()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(sig), 0); errno != 0 {
		return fmt.Errorf("setting the parent-death signal: %w", errno)
	}
	// The parent may have exited before the call: then we were re-parented
	// and no signal will come.
	if os.Getppid() != parent {
		return syscall.Kill(os.Getpid(), sig)
	}
	return nil
}

// reapStale kills processes left behind by an earlier run that was killed
// before it could stop them: etcd and kube-apiserver are started by envtest
// without a parent-death signal. It returns what it killed.
func reapStale(stateDir string, binaries []string) []string {
	var killed []string
	for _, p := range findProcesses(stateDir, binaries) {
		if syscall.Kill(p.pid, syscall.SIGKILL) == nil {
			killed = append(killed, p.String())
		}
	}
	return killed
}

// foundProcess is a process found in /proc.
type foundProcess struct {
	pid int
	exe string
}

func (p foundProcess) String() string { return fmt.Sprintf("%s (pid %d)", filepath.Base(p.exe), p.pid) }

// findProcesses lists the processes that belong to a cluster in stateDir:
// their executable is one of binaries and their command line mentions
// stateDir, so nothing else (an editor, a tail -f on a log) ever matches.
func findProcesses(stateDir string, binaries []string) []foundProcess {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var found []foundProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue // gone, or not ours to inspect
		}
		// A binary rebuilt while the process ran shows as "path (deleted)".
		exe = strings.TrimSuffix(exe, " (deleted)")
		if !slices.Contains(binaries, exe) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), stateDir+string(filepath.Separator)) {
			continue
		}
		found = append(found, foundProcess{pid: pid, exe: exe})
	}
	return found
}
