// Package testsupport is what the integration tests, the fault tests and
// the benchmark share: a real control plane (etcd and kube-apiserver, built
// by hack/tools/build.sh into bin/k8s) with the CRDs from config/crd/bases
// installed, the scheme, callback servers running in-process, and ready
// ChatReceivers set up as the reconciler would.
package testsupport

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"chatgroup.dev/chatgroup-operator/internal/cli"
)

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	// Config is an admin rest config.
	Config *rest.Config
	// Client is a direct (uncached) client: assertions read the API server,
	// never a cache.
	Client client.Client
	// Kubeconfig is the path of an admin kubeconfig file.
	Kubeconfig string
}

// RepoRoot is the repository root, found from this file's location so that
// tests also run from an IDE.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// BinDir is where the control-plane binaries are: $KUBEBUILDER_ASSETS, or
// bin/k8s.
func BinDir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join(RepoRoot(), "bin", "k8s")
}

// Scheme returns the commands' scheme (the built-in kinds and this
// project's API) with the CRD kinds added.
func Scheme() *k8sruntime.Scheme {
	s, err := cli.Scheme()
	if err == nil {
		err = apiextensionsv1.AddToScheme(s)
	}
	if err != nil {
		panic(err)
	}
	return s
}

// Start starts a control plane, or skips the test in -short mode. It fails
// with a hint when the binaries have not been built.
func Start(tb testing.TB) *Env {
	tb.Helper()
	if testing.Short() {
		tb.Skip("integration test: needs a control plane (run without -short)")
	}
	env, err := New()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := env.Stop(); err != nil {
			tb.Logf("stopping control plane: %v", err)
		}
	})
	return env
}

// RunMain is the TestMain of a package whose integration tests share one
// control plane: it sets *env (left nil in -short mode, where those tests
// skip), runs the tests, stops the control plane and exits with the
// tests' status.
func RunMain(m *testing.M, env **Env) {
	flag.Parse()
	cli.SetUpLogging(os.Stderr, testing.Verbose())
	if testing.Short() {
		os.Exit(m.Run())
	}
	var err error
	if *env, err = New(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := (*env).Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping control plane:", err)
	}
	os.Exit(code)
}

// New starts a control plane; call Stop when done.
func New() (*Env, error) {
	bin := BinDir()
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run `make envtest` (builds it from Go modules)", b, bin)
		}
	}
	te := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: bin,
		Scheme:                Scheme(),
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("starting control plane: %w", err)
	}
	env := &Env{Environment: te, Config: cfg}
	if env.Client, err = client.New(cfg, client.Options{Scheme: te.Scheme}); err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("creating client: %w", err)
	}
	user, err := te.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("adding admin user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("rendering kubeconfig: %w", err)
	}
	f, err := os.CreateTemp("", "chatgroup-envtest-*.kubeconfig")
	if err != nil {
		_ = te.Stop()
		return nil, err
	}
	if _, err := f.Write(kubeconfig); err != nil {
		_ = te.Stop()
		return nil, err
	}
	_ = f.Close()
	env.Kubeconfig = f.Name()
	return env, nil
}

// Stop stops the control plane and removes the kubeconfig.
func (e *Env) Stop() error {
	_ = os.Remove(e.Kubeconfig)
	return e.Environment.Stop()
}
