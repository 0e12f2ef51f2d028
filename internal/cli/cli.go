// Package cli holds what the commands under hack/ share: a flag set of their
// own, logging set up before any controller-runtime use, and a client built
// from a kubeconfig.
//
// Commands never use the global flag.CommandLine: controller-runtime's
// config package registers --kubeconfig on it when imported, so a command
// that defines the same flag there panics at start.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// NewFlagSet returns the command's own flag set. -h and --help print usage
// (a one-line synopsis, then the flags) and exit 0; a bad flag exits 2.
func NewFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	fs.Usage = func() {
		out := fs.Output()
		_, _ = fmt.Fprintf(out, "Usage: %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses the command line into fs and rejects positional arguments:
// every input of these commands is a flag.
func Parse(fs *flag.FlagSet) {
	_ = fs.Parse(os.Args[1:]) // ExitOnError: Parse exits on its own errors
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(fs.Output(), "%s: unexpected argument %q: every input is a flag\nRun with -h for the flags.\n",
			fs.Name(), fs.Arg(0))
		os.Exit(2)
	}
}

// SetUpLogging gives controller-runtime a logger that writes to w: errors
// only, or everything from info up when verbose. Commands and test binaries
// call it before any controller-runtime use; otherwise controller-runtime
// prints a warning with a goroutine stack trace after 30 seconds. No level
// prints stack traces.
func SetUpLogging(w io.Writer, verbose bool) {
	level := zapcore.ErrorLevel
	if verbose {
		level = zapcore.InfoLevel
	}
	ctrllog.SetLogger(zap.New(zap.WriteTo(w), zap.ConsoleEncoder(), zap.Level(level),
		zap.StacktraceLevel(zapcore.FatalLevel+1)))
}

// Scheme knows the built-in kinds and the operator's API.
func Scheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), imv1.AddToScheme(scheme)); err != nil {
		return nil, fmt.Errorf("building the client scheme: %w", err)
	}
	return scheme, nil
}

// Kubeconfig loads a kubeconfig the way kubectl does: path if set, else
// $KUBECONFIG, else ~/.kube/config. It also returns the loader, for the
// kubeconfig's namespace.
func Kubeconfig(path string) (*rest.Config, clientcmd.ClientConfig, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("loading the kubeconfig (set --kubeconfig or KUBECONFIG): %w", err)
	}
	return cfg, loader, nil
}

// NewClient returns a direct (uncached) client for cfg.
func NewClient(cfg *rest.Config) (client.Client, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	return c, nil
}
