// Package localcluster starts a complete Kubernetes control plane on
// loopback from the binaries that hack/tools/build.sh builds: etcd and
// kube-apiserver (through controller-runtime's envtest, which generates the
// certificates and service-account keys), kube-controller-manager,
// kube-scheduler and kwok, which fakes a node so that Pods run and Jobs
// succeed without a container runtime. `make run-local` and the e2e test use
// it; it needs no Docker and downloads nothing but Go modules.
package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options configure Start. The zero value is usable.
type Options struct {
	// RepoRoot is the repository root: binaries are read from <RepoRoot>/bin
	// and kwok's stages are located through <RepoRoot>/hack/tools/kwok.
	// Default: found from the working directory (FindRepoRoot).
	RepoRoot string
	// StateDir holds the kubeconfig, logs/, etcd's data and the API
	// server's certificates. Only one cluster can use a state directory at a
	// time. Default: <RepoRoot>/bin/local.
	StateDir string
	// NodeName is the fake node's name. Default: kwok-node-0.
	NodeName string
	// StartTimeout bounds Start. Default: 3 minutes.
	StartTimeout time.Duration
	// StopGracePeriod is how long each process gets to exit after SIGTERM
	// before it is killed. Default: 10 seconds.
	StopGracePeriod time.Duration
	// Logf receives progress lines. Default: standard error.
	Logf func(format string, args ...any)
}

// Cluster is a running local control plane.
type Cluster struct {
	// Kubeconfig is the path of an admin (system:masters) kubeconfig.
	Kubeconfig string
	// RESTConfig is the same admin identity for Go clients.
	RESTConfig *rest.Config
	// StateDir and LogDir are where the cluster keeps its files; LogDir
	// holds one <component>.log per process.
	StateDir, LogDir string
	// BinDir is the directory of the control-plane binaries and kubectl.
	BinDir string

	opts     Options
	env      *envtest.Environment
	logFiles []*os.File // etcd's and kube-apiserver's, written by envtest
	procs    []*Process // started after the API server, stopped before it
	lock     *stateLock
	failed   chan error
	stopping atomic.Bool
	stopOnce sync.Once
	stopErr  error
}

// Start starts the control plane and returns once a node is Ready and the
// default ServiceAccount exists, that is once Pods can be created and Jobs
// can run. On error everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	begin := time.Now()
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	c := &Cluster{
		StateDir: opts.StateDir,
		LogDir:   filepath.Join(opts.StateDir, "logs"),
		BinDir:   filepath.Join(opts.RepoRoot, "bin", "k8s"),
		opts:     opts,
		failed:   make(chan error, 3), // one per component
	}
	if err := c.checkBinaries(); err != nil {
		return nil, err
	}
	if err := c.prepareStateDir(); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := c.start(ctx); err != nil {
		if stopErr := c.Stop(); stopErr != nil {
			err = fmt.Errorf("%w (stopping what had started: %w)", err, stopErr)
		}
		return nil, err
	}
	c.opts.Logf("Control plane ready in %.1fs: kubeconfig %s, logs in %s",
		time.Since(begin).Seconds(), DisplayPath(c.Kubeconfig), DisplayPath(c.LogDir))
	return c, nil
}

func (o *Options) setDefaults() error {
	if o.RepoRoot == "" {
		root, err := FindRepoRoot()
		if err != nil {
			return err
		}
		o.RepoRoot = root
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.RepoRoot, "bin", "local")
	}
	// Absolute paths: they are passed to processes and matched in /proc
	// when leftovers of a killed run are cleaned up.
	var err error
	if o.RepoRoot, err = filepath.Abs(o.RepoRoot); err != nil {
		return fmt.Errorf("resolving the repository root: %w", err)
	}
	if o.StateDir, err = filepath.Abs(o.StateDir); err != nil {
		return fmt.Errorf("resolving the state directory: %w", err)
	}
	if o.NodeName == "" {
		o.NodeName = "kwok-node-0"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 3 * time.Minute
	}
	if o.StopGracePeriod <= 0 {
		o.StopGracePeriod = 10 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "localcluster: "+format+"\n", args...)
		}
	}
	return nil
}

// binaries lists every executable the cluster runs.
func (c *Cluster) binaries() []string {
	return []string{
		filepath.Join(c.BinDir, "etcd"),
		filepath.Join(c.BinDir, "kube-apiserver"),
		filepath.Join(c.BinDir, "kube-controller-manager"),
		filepath.Join(c.BinDir, "kube-scheduler"),
		c.kwokPath(),
	}
}

func (c *Cluster) kwokPath() string { return filepath.Join(c.opts.RepoRoot, "bin", "kwok") }

// KubectlPath is the kubectl built next to the control plane.
func (c *Cluster) KubectlPath() string { return filepath.Join(c.BinDir, "kubectl") }

func (c *Cluster) checkBinaries() error {
	var missing []string
	for _, b := range append(c.binaries(), c.KubectlPath()) {
		if _, err := os.Stat(b); err != nil {
			missing = append(missing, filepath.Base(b))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing binaries %v under %s/bin: build them with `hack/tools/build.sh %s` (or `make tools`)",
			missing, c.opts.RepoRoot, strings.Join(missing, " "))
	}
	return nil
}

// prepareStateDir locks the state directory, kills what a killed earlier
// run left behind, and removes its data: every cluster starts empty.
func (c *Cluster) prepareStateDir() error {
	if err := os.MkdirAll(c.StateDir, 0o755); err != nil {
		return fmt.Errorf("creating the state directory: %w", err)
	}
	lock, err := lockStateDir(c.StateDir)
	if err != nil {
		return err
	}
	c.lock = lock
	if killed := reapStale(c.StateDir, c.binaries()); len(killed) > 0 {
		c.opts.Logf("Killed processes left over by an earlier run: %v", killed)
	}
	for _, name := range []string{"etcd", "apiserver", "logs", "kubeconfig", "kwok-stages.yaml"} {
		if err := os.RemoveAll(filepath.Join(c.StateDir, name)); err != nil {
			lock.release()
			return fmt.Errorf("cleaning the state directory: %w", err)
		}
	}
	if err := os.MkdirAll(c.LogDir, 0o755); err != nil {
		lock.release()
		return fmt.Errorf("creating the log directory: %w", err)
	}
	return nil
}

func (c *Cluster) start(ctx context.Context) error {
	stages := filepath.Join(c.StateDir, "kwok-stages.yaml")
	moduleDir, err := kwokModuleDir(ctx, filepath.Join(c.opts.RepoRoot, "hack", "tools", "kwok"))
	if err != nil {
		return err
	}
	if err := writeKwokStages(moduleDir, stages); err != nil {
		return err
	}
	if err := c.startAPIServer(); err != nil {
		return err
	}
	if err := c.startComponents(stages); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("creating a clientset: %w", err)
	}
	if err := createNode(ctx, cs, c.opts.NodeName); err != nil {
		return err
	}
	c.opts.Logf("Waiting for node %s to be Ready and for the default ServiceAccount", c.opts.NodeName)
	if err := c.waitFor(ctx, "node "+c.opts.NodeName+" to be Ready", nodeReady(cs, c.opts.NodeName)); err != nil {
		return err
	}
	return c.waitFor(ctx, "the default ServiceAccount (created by kube-controller-manager)", defaultServiceAccountExists(cs))
}

// startAPIServer starts etcd and kube-apiserver through envtest and writes
// the admin kubeconfig.
func (c *Cluster) startAPIServer() error {
	c.opts.Logf("Starting etcd and kube-apiserver")
	begin := time.Now()
	etcdLog, err := c.createLog("etcd")
	if err != nil {
		return err
	}
	apiLog, err := c.createLog("kube-apiserver")
	if err != nil {
		return err
	}
	c.env = &envtest.Environment{
		ControlPlane: envtest.ControlPlane{
			// Data and certificates live in the state directory rather
			// than in fresh temporary directories, so that a killed run
			// leaves nothing behind that the next Start does not remove.
			// The binaries are named explicitly so that KUBEBUILDER_ASSETS
			// cannot swap them for ones Stop and the leftover check do not
			// know about.
			Etcd: &envtest.Etcd{Path: filepath.Join(c.BinDir, "etcd"),
				DataDir: filepath.Join(c.StateDir, "etcd"), Out: etcdLog, Err: etcdLog},
			APIServer: &envtest.APIServer{Path: filepath.Join(c.BinDir, "kube-apiserver"),
				CertDir: filepath.Join(c.StateDir, "apiserver"), Out: apiLog, Err: apiLog},
			KubectlPath: c.KubectlPath(),
		},
		ControlPlaneStopTimeout: c.opts.StopGracePeriod,
	}
	for _, dir := range []string{c.env.ControlPlane.Etcd.DataDir, c.env.ControlPlane.APIServer.CertDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	// envtest provisions the admin user (group system:masters) with
	// AddUser and renders its kubeconfig, with the credentials inline.
	cfg, err := c.env.Start()
	if err != nil {
		c.env = nil // nothing is left running when Start fails
		return fmt.Errorf("starting etcd and kube-apiserver (logs in %s): %w", c.LogDir, err)
	}
	c.RESTConfig = rest.CopyConfig(cfg)
	c.Kubeconfig = filepath.Join(c.StateDir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, c.env.KubeConfig, 0o600); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	c.opts.Logf("kube-apiserver is serving at %s (%.1fs)", cfg.Host, time.Since(begin).Seconds())
	return nil
}

func (c *Cluster) createLog(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(c.LogDir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("creating the %s log: %w", name, err)
	}
	c.logFiles = append(c.logFiles, f)
	return f, nil
}

// startComponents starts kube-controller-manager, kube-scheduler and kwok.
// None of them serves anything: their secure ports are off, and kwok's
// server address is empty.
func (c *Cluster) startComponents(stages string) error {
	components := []struct {
		name, path string
		args       []string
	}{
		{"kube-controller-manager", filepath.Join(c.BinDir, "kube-controller-manager"), []string{
			"--kubeconfig=" + c.Kubeconfig,
			// The token controller would need the service-account signing
			// key; nothing here mounts legacy token Secrets, and envtest
			// disables the ServiceAccount admission plugin anyway.
			"--controllers=*,-serviceaccount-token",
			"--use-service-account-credentials=false",
			"--leader-elect=false",
			"--secure-port=0",
		}},
		{"kube-scheduler", filepath.Join(c.BinDir, "kube-scheduler"), []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--leader-elect=false",
			"--secure-port=0",
		}},
		{"kwok", c.kwokPath(), []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--manage-all-nodes=true",
			"--server-address=",
			"--config=" + stages,
		}},
	}
	for _, comp := range components {
		c.opts.Logf("Starting %s", comp.name)
		p, err := StartProcess(comp.name, filepath.Join(c.LogDir, comp.name+".log"), comp.path, comp.args...)
		if err != nil {
			return err
		}
		c.procs = append(c.procs, p)
		go c.watch(p)
	}
	return nil
}

// watch reports a component that exits while the cluster is running.
func (c *Cluster) watch(p *Process) {
	<-p.Done()
	if c.stopping.Load() {
		return
	}
	select {
	case c.failed <- p.ExitError():
	default:
	}
}

// Failed receives an error when a component (kube-controller-manager,
// kube-scheduler or kwok) exits while the cluster is running.
func (c *Cluster) Failed() <-chan error { return c.failed }

// waitFor polls cond until it holds, the context ends, or a component
// exits. Errors from cond are remembered for the message but not fatal:
// the API server may still be settling.
func (c *Cluster) waitFor(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	var lastErr error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %w)", what, ctx.Err(), lastErr)
			}
			return fmt.Errorf("waiting for %s: %w; see the logs in %s", what, ctx.Err(), c.LogDir)
		case err := <-c.failed:
			return fmt.Errorf("waiting for %s: %w", what, err)
		case <-ticker.C:
		}
	}
}

// Stop stops every process, kwok and the controllers first and the API
// server and etcd last, each with SIGTERM and then SIGKILL after the grace
// period. It removes the kubeconfig and the cluster's data but keeps the
// logs. Calling it again returns the first result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Cluster) stop() error {
	c.stopping.Store(true)
	var errs []error
	// The three components are independent: stop them in parallel.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range c.procs {
		wg.Go(func() {
			if err := p.Stop(c.opts.StopGracePeriod); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping kube-apiserver and etcd: %w", err))
		}
	}
	for _, f := range c.logFiles {
		_ = f.Close()
	}
	for _, name := range []string{"etcd", "apiserver", "kubeconfig"} {
		if err := os.RemoveAll(filepath.Join(c.StateDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("cleaning the state directory: %w", err))
		}
	}
	if c.lock != nil {
		c.lock.release()
	}
	return kerrors.NewAggregate(errs)
}

// Kubectl runs the cluster's kubectl with the admin kubeconfig and returns
// its combined output. The error includes the output, which is where
// kubectl explains what went wrong.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.KubectlPath(), append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// DisplayPath shortens a path below the working directory for messages:
// users run from the repository root and copy what they see.
func DisplayPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}
