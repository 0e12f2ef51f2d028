//go:build unix && !linux

package localcluster

import "syscall"

// sysProcAttr puts the child in its own process group. Other systems have no
// parent-death signal, so Stop must run for the children to end.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// SignalOnParentExit needs Linux's parent-death signal; elsewhere the
// command must be stopped directly.
func SignalOnParentExit(syscall.Signal) error { return nil }

// reapStale finds leftovers through /proc, which only Linux has.
func reapStale(string, []string) []string { return nil }

// foundProcess is a process found in /proc.
type foundProcess struct {
	pid int
	exe string
}

// findProcesses needs /proc, which only Linux has.
func findProcesses(string, []string) []foundProcess { return nil }
