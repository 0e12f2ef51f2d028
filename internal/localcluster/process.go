package localcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is a child process started in its own process group, with its
// output in a log file. Its own process group means a Ctrl-C in the terminal
// reaches only the parent, which then stops the children in order (an API
// server that dies before its clients makes them log a storm of errors), and
// Stop can signal the whole group, including anything the child forked.
type Process struct {
	// Name identifies the process in messages, for example "kwok".
	Name string
	// LogPath receives the process's stdout and stderr.
	LogPath string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid once done is closed
}

// StartProcess starts path with args, appending stdout and stderr to
// logPath (created or truncated).
func StartProcess(name, logPath, path string, args ...string) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("creating the log directory for %s: %w", name, err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the log file for %s: %w", name, err)
	}
	// The child holds its own copy of the descriptor; ours is closed
	// right after the start either way.
	defer func() { _ = logFile.Close() }()

	cmd := exec.Command(path, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process ID, which is also its process group ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitError describes how the process ended. Call it after Done is closed.
func (p *Process) ExitError() error {
	if p.err == nil {
		return fmt.Errorf("%s exited with status 0; its log is %s", p.Name, p.LogPath)
	}
	return fmt.Errorf("%s exited: %w; last lines of %s:\n%s", p.Name, p.err, p.LogPath, Tail(p.LogPath, 15))
}

// Stop sends SIGTERM to the process group, then SIGKILL if the process has
// not exited after grace. The SIGKILL also goes to the group so that no
// grandchild survives. Stop is safe to call after the process has exited.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := signalGroup(p.Pid(), syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping %s: %w", p.Name, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		// The leader is gone; make sure its group is too.
		_ = signalGroup(p.Pid(), syscall.SIGKILL)
		return nil
	case <-timer.C:
	}
	if err := signalGroup(p.Pid(), syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing %s after %s: %w", p.Name, grace, err)
	}
	<-p.done
	return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", p.Name, grace)
}

// signalGroup signals every process in the group led by pid. A group that
// no longer exists is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Tail returns the last n lines of the file at path, or a note saying why it
// could not be read. It is meant for error messages.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var s strings.Builder
	for _, l := range lines {
		s.WriteString("    ")
		s.Write(l)
		s.WriteByte('\n')
	}
	return s.String()
}
