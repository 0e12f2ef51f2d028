// Package managerproc builds the operator's manager binary and runs it as a
// separate process against a cluster, out of cluster, the way `make
// run-local` and the e2e test do. A separate process (rather than the
// manager in-process) is what a user runs and lets a test kill it for real.
package managerproc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"chatgroup.dev/chatgroup-operator/internal/localcluster"
)

// Build compiles the manager (the module's main package) into out.
func Build(ctx context.Context, repoRoot, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the manager (go build -o %s .): %w\n%s", out, err, bytes.TrimSpace(b))
	}
	return nil
}

// Options configure one manager process.
type Options struct {
	// Binary is the manager executable.
	Binary string
	// Kubeconfig is the identity the manager runs as.
	Kubeconfig string
	// CallbackAddr and ProbeAddr are the loopback host:port the callback
	// server and the health probes listen on.
	CallbackAddr, ProbeAddr string
	// LogPath receives the manager's output.
	LogPath string
	// Args are extra flags.
	Args []string
	// ReadyTimeout bounds the wait for /readyz. Default: 60 seconds.
	ReadyTimeout time.Duration
}

// Manager is a running manager process.
type Manager struct {
	*localcluster.Process
	// CallbackURL is the callback server's base URL, for example
	// http://127.0.0.1:8082.
	CallbackURL string
}

// Start starts the manager and waits until /readyz answers 200, which the
// callback server holds back until its cache has synced.
func Start(ctx context.Context, opts Options) (*Manager, error) {
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	args := append([]string{
		"--kubeconfig=" + opts.Kubeconfig,
		"--callback-bind-address=" + opts.CallbackAddr,
		"--health-probe-bind-address=" + opts.ProbeAddr,
		"--metrics-bind-address=0",
	}, opts.Args...)
	p, err := localcluster.StartProcess("manager", opts.LogPath, opts.Binary, args...)
	if err != nil {
		return nil, err
	}
	m := &Manager{Process: p, CallbackURL: "http://" + opts.CallbackAddr}
	if err := m.waitReady(ctx, "http://"+opts.ProbeAddr+"/readyz", opts.ReadyTimeout); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return m, nil
}

func (m *Manager) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	// Each failed probe is logged by the manager: poll gently.
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	for {
		if ready(ctx, client, url) {
			return nil
		}
		select {
		case <-m.Done():
			return m.ExitError()
		case <-ctx.Done():
			return fmt.Errorf("the manager was not ready within %s (%s); last lines of %s:\n%s",
				timeout, url, m.LogPath, localcluster.Tail(m.LogPath, 15))
		case <-ticker.C:
		}
	}
}

func ready(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Kill ends the manager with SIGKILL, like a crash or an OOM kill: nothing
// is flushed and no lease is released.
func (m *Manager) Kill() error {
	if err := syscall.Kill(-m.Pid(), syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing the manager: %w", err)
	}
	<-m.Done()
	return nil
}

// FreeLoopbackAddr returns a 127.0.0.1 address with a port that was free a
// moment ago and is none of except (addresses chosen for the same process
// but not listened on yet, which the kernel may hand out again). Another
// process could take the port before it is used; that is acceptable for
// local runs and tests.
func FreeLoopbackAddr(except ...string) (string, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("finding a free loopback port: %w", err)
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil {
			return "", fmt.Errorf("finding a free loopback port: %w", err)
		}
		if !slices.Contains(except, addr) {
			return addr, nil
		}
	}
	return "", fmt.Errorf("finding a free loopback port other than %v: the kernel kept handing those out", except)
}

// CheckAddrFree fails with a clear message when addr cannot be listened on,
// before a manager fails on it with a less obvious one.
func CheckAddrFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is not free (%w): stop what listens there or choose another address", addr, err)
	}
	return l.Close()
}
