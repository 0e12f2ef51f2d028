// Command run-local starts a local control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and a kwok node), installs the
// operator's CRDs and RBAC from dist/install.yaml, applies the sample
// receivers and cleanup trigger, starts a fake Tencent and a fake OpenIM
// REST API for the receivers to resync from, and runs the operator from the
// local build against it. It prints what to do next and runs until interrupted; then it
// stops the operator and the whole control plane.
//
// Usage (from the repository root): make run-local, or go run ./hack/run-local.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"chatgroup.dev/chatgroup-operator/internal/cli"
	"chatgroup.dev/chatgroup-operator/internal/localcluster"
	"chatgroup.dev/chatgroup-operator/internal/managerproc"
	"chatgroup.dev/chatgroup-operator/internal/provider/providertest"
)

// The binaries the local cluster runs, built by hack/tools/build.sh.
var tools = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"}

// The installer's Deployment: the operator runs out of cluster instead.
const (
	operatorNamespace  = "chatgroup-system"
	operatorDeployment = "chatgroup-controller-manager"
)

// samplesNamespace is where config/samples lands: the samples name no
// namespace, so kubectl uses the kubeconfig's, which is default.
const samplesNamespace = "default"

// sampleReceivers are the ChatReceivers in config/samples.
var sampleReceivers = []string{"tencent", "openim"}

type options struct {
	callbackAddr string
	stopGrace    time.Duration
	// managerArgs are extra flags for the operator.
	managerArgs []string
}

func main() {
	cli.SetUpLogging(os.Stderr, false)
	var o options
	fs := cli.NewFlagSet("run-local", "make run-local [RUN_LOCAL_FLAGS=...], or go run ./hack/run-local [flags]")
	fs.StringVar(&o.callbackAddr, "callback-address", "127.0.0.1:8082", "Loopback host:port for the operator's callback server.")
	fs.DurationVar(&o.stopGrace, "stop-grace-period", 15*time.Second, "How long each process gets to exit after SIGTERM before it is killed.")
	fs.Func("manager-flag", "An extra flag for the operator, for example --manager-flag=--callback-commit-budget=10s (repeatable).",
		func(v string) error { o.managerArgs = append(o.managerArgs, v); return nil })
	cli.Parse(fs)
	err := run(o)
	switch {
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(os.Stderr, "run-local: interrupted")
		os.Exit(130)
	case err != nil:
		fmt.Fprintf(os.Stderr, "run-local: %v\n", err)
		os.Exit(1)
	}
}

// errInterrupted replaces whatever error a step returned because a signal
// cancelled it.
var errInterrupted = errors.New("interrupted")

func say(format string, args ...any) {
	fmt.Printf("run-local: "+format+"\n", args...)
}

func run(o options) (err error) {
	// If make or `go run` above us is killed, stop as if interrupted.
	if err := localcluster.SignalOnParentExit(syscall.SIGTERM); err != nil {
		return err
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = errInterrupted
		}
	}()

	root, err := localcluster.FindRepoRoot()
	if err != nil {
		return err
	}
	// Every path handed to a tool and printed for the user is relative to
	// the repository root.
	if err := os.Chdir(root); err != nil {
		return fmt.Errorf("changing to the repository root: %w", err)
	}
	if err := managerproc.CheckAddrFree(o.callbackAddr); err != nil {
		return fmt.Errorf("callback address: %w (see --callback-address)", err)
	}
	if err := buildTools(ctx); err != nil {
		return err
	}

	cluster, err := localcluster.Start(ctx, localcluster.Options{RepoRoot: root, StopGracePeriod: o.stopGrace, Logf: say})
	if err != nil {
		return err
	}
	var mgr *managerproc.Manager
	var fakes []fakeProvider
	defer func() {
		shutdown(mgr, cluster, o.stopGrace)
		closeFakes(fakes) // after the operator, which may be reading them
	}()

	if err := install(ctx, cluster); err != nil {
		return err
	}
	if fakes, err = startFakeProviders(ctx, cluster); err != nil {
		return err
	}
	for _, f := range fakes {
		say("Fake %s REST API on %s: receiver %s resyncs from it", f.receiver, f.url, f.receiver)
	}
	if mgr, err = startManager(ctx, cluster, o); err != nil {
		return err
	}
	if err := waitForReceivers(ctx, cluster); err != nil {
		return err
	}
	printNextSteps(cluster, mgr)
	return wait(ctx, mgr, cluster)
}

// buildTools builds whatever control-plane binary is missing or outdated;
// build.sh skips the ones that are current.
func buildTools(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, filepath.Join("hack", "tools", "build.sh"), tools...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the control-plane tools: %w", err)
	}
	return nil
}

// install applies the operator's installer and the samples.
func install(ctx context.Context, c *localcluster.Cluster) error {
	say("Installing dist/install.yaml (CRDs, namespace %s, RBAC)", operatorNamespace)
	steps := [][]string{
		{"apply", "--server-side", "-f", filepath.Join("dist", "install.yaml")},
		{"wait", "--for=condition=Established", "--timeout=60s",
			"crd/chatgroups.im.chatgroup.dev", "crd/chatreceivers.im.chatgroup.dev", "crd/chatgrouptriggers.im.chatgroup.dev"},
		// The operator runs out of cluster from the local build; the
		// installer's replicas would only be Pods that kwok pretends to run.
		{"scale", "--namespace", operatorNamespace, "deployment/" + operatorDeployment, "--replicas=0"},
	}
	for _, args := range steps {
		if _, err := c.Kubectl(ctx, args...); err != nil {
			return err
		}
	}
	say("Applying config/samples (receivers %s and the cleanup trigger) in namespace %s, with random tokens",
		strings.Join(sampleReceivers, ", "), samplesNamespace)
	return c.ApplySamples(ctx, filepath.Join("config", "samples"), samplesNamespace)
}

func startManager(ctx context.Context, c *localcluster.Cluster, o options) (*managerproc.Manager, error) {
	binary := filepath.Join("bin", "manager")
	say("Building the operator (go build -o %s .)", binary)
	if err := managerproc.Build(ctx, ".", binary); err != nil {
		return nil, err
	}
	probeAddr, err := managerproc.FreeLoopbackAddr(o.callbackAddr)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(c.LogDir, "manager.log")
	say("Starting the operator: callbacks on %s, log in %s", o.callbackAddr, localcluster.DisplayPath(logPath))
	return managerproc.Start(ctx, managerproc.Options{
		Binary:       binary,
		Kubeconfig:   c.Kubeconfig,
		CallbackAddr: o.callbackAddr,
		ProbeAddr:    probeAddr,
		LogPath:      logPath,
		Args:         o.managerArgs,
	})
}

// waitForReceivers waits until the operator has published the samples'
// webhook paths.
func waitForReceivers(ctx context.Context, c *localcluster.Cluster) error {
	cl, err := cli.NewClient(c.RESTConfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, name := range sampleReceivers {
		key := types.NamespacedName{Namespace: samplesNamespace, Name: name}
		for {
			_, err := providertest.ForReceiver(ctx, cl, key)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for ChatReceiver %s to be Ready: %w", key, err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	say("Receivers %s are Ready", strings.Join(sampleReceivers, ", "))
	return nil
}

func printNextSteps(c *localcluster.Cluster, mgr *managerproc.Manager) {
	urlFlag := ""
	if mgr.CallbackURL != "http://127.0.0.1:8082" {
		urlFlag = " --url " + mgr.CallbackURL
	}
	send := "go run ./hack/send-callback" + urlFlag + " --receiver " + samplesNamespace + "/"
	fmt.Printf(`
The operator is running. Press Ctrl-C here to stop it and the control plane.

In another terminal, from the repository root:

  export KUBECONFIG=%s
  %stencent --command create --group '@TGS#2J4SZEAEL' --users leckie,bob,peter
  %stencent --command quit --group '@TGS#2J4SZEAEL' --users peter
  bin/k8s/kubectl get chatgroups
  %stencent --command disband --group '@TGS#2J4SZEAEL' --owner leckie
  bin/k8s/kubectl get jobs,chatgroups -o wide

OpenIM works the same way:
  %sopenim --command join --group 3188466436 --users u1,u2

Lose a callback (--drop changes only the fake provider) and let resync repair it:
  %stencent --command join --group '@TGS#2J4SZEAEL' --users carol --drop
  bin/k8s/kubectl annotate chatreceiver tencent im.chatgroup.dev/resync-requested-at=now-1 --overwrite

Logs: %s (operator), %s/ (control plane)
`, localcluster.DisplayPath(c.Kubeconfig), send, send, send, send, send, localcluster.DisplayPath(mgr.LogPath), localcluster.DisplayPath(c.LogDir))
}

// wait runs until a signal arrives, the operator exits, or a control-plane
// component does.
func wait(ctx context.Context, mgr *managerproc.Manager, c *localcluster.Cluster) error {
	select {
	case <-ctx.Done():
		fmt.Println()
		return nil
	case <-mgr.Done():
		return fmt.Errorf("the operator stopped unexpectedly: %w", mgr.ExitError())
	case err := <-c.Failed():
		return fmt.Errorf("the control plane failed: %w", err)
	}
}

// shutdown stops the operator first, so it does not log a storm of errors
// about a vanished API server, then the control plane.
func shutdown(mgr *managerproc.Manager, c *localcluster.Cluster, grace time.Duration) {
	say("Stopping the operator and the control plane")
	var errs []error
	if mgr != nil {
		errs = append(errs, mgr.Stop(grace))
	}
	errs = append(errs, c.Stop())
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "run-local: %v\n", err)
		return
	}
	say("Stopped; logs are in %s", localcluster.DisplayPath(c.LogDir))
}
