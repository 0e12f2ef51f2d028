// Command loadgen posts a bounded number of realistic, correctly signed
// group callbacks to a running callback server, then verifies that every
// acknowledged event is reflected in the ChatGroups.
//
//	go run ./hack/loadgen --kubeconfig bin/local/kubeconfig --receiver chat-demo/tencent \
//	    --url http://127.0.0.1:8082 --events 5000 --groups 100 --rate 500
//
// The receiver's webhook path, token and appID are read from the cluster.
// It exits non-zero when an acknowledged event was lost or applied twice.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/cli"
	"chatgroup.dev/chatgroup-operator/internal/loadgen"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
)

func main() {
	cli.SetUpLogging(os.Stderr, false)
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// flags are the command line.
type flags struct {
	kubeconfig, receiver, urls string
	workload                   loadgen.Workload
	opts                       loadgen.Options
}

func parseFlags() flags {
	fs := cli.NewFlagSet("loadgen", "go run ./hack/loadgen --receiver NAMESPACE/NAME [--kubeconfig FILE] [--url URL,...] [flags]")
	f := flags{workload: loadgen.Workload{GroupPrefix: fmt.Sprintf("load%d", time.Now().Unix())}}
	w, o := &f.workload, &f.opts
	fs.StringVar(&f.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "Kubeconfig of the cluster holding the receiver and the ChatGroups.")
	fs.StringVar(&f.receiver, "receiver", "", "The ChatReceiver to load, as namespace/name.")
	fs.StringVar(&f.urls, "url", "http://127.0.0.1:8082", "Callback server base URLs, comma-separated (several replicas share the load).")
	fs.IntVar(&w.Events, "events", 2000, "Distinct events to send (duplicates and bad requests come on top).")
	fs.IntVar(&w.Groups, "groups", 100, "Groups to spread the events over.")
	fs.IntVar(&w.HotGroups, "hot-groups", 0, "Number of hot groups that receive --hot-fraction of the events.")
	fs.Float64Var(&w.HotFraction, "hot-fraction", 0, "Fraction of the events that go to the hot groups.")
	fs.Float64Var(&w.LeaveFraction, "leave-fraction", 0.25, "Fraction of joined users that quit or are kicked afterwards.")
	fs.Float64Var(&w.DuplicateRate, "duplicates", 0, "Fraction of events delivered twice.")
	fs.IntVar(&w.ReorderWindow, "reorder", 0, "Shuffle deliveries within windows of this many events.")
	fs.Uint64Var(&w.Seed, "seed", 1, "Seed of the workload.")
	fs.StringVar(&w.GroupPrefix, "group-prefix", w.GroupPrefix, "Prefix of the generated group IDs.")
	fs.Float64Var(&o.Rate, "rate", 0, "Target requests per second (0: as fast as --concurrency allows).")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "Requests in flight at most.")
	fs.Float64Var(&o.BadFraction, "bad-fraction", 0, "Invalid requests mixed in per delivery (oversized, malformed, unsigned, misaddressed).")
	cli.Parse(fs)
	return f
}

func run() error {
	f := parseFlags()
	ns, name, ok := strings.Cut(f.receiver, "/")
	if !ok {
		return fmt.Errorf("--receiver must be namespace/name")
	}
	cfg, _, err := cli.Kubeconfig(f.kubeconfig)
	if err != nil {
		return err
	}
	c, err := cli.NewClient(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()

	target, provider, fake, err := lookUp(ctx, c, ns, name)
	if err != nil {
		return err
	}
	target.BaseURLs = strings.Split(f.urls, ",")
	f.workload.Provider = provider
	plan, err := loadgen.NewPlan(f.workload)
	if err != nil {
		return err
	}
	if err := changeTruth(ctx, fake, plan); err != nil {
		return err
	}
	f.opts.Progress = os.Stderr
	fmt.Printf("Sending %d %s events (%d deliveries) to %d groups via %s\n", len(plan.Events), provider,
		len(plan.Deliveries[0])+len(plan.Deliveries[1]), f.workload.Groups, f.urls)
	rep, err := loadgen.Run(ctx, plan, target, f.opts)
	if err != nil {
		return err
	}
	fmt.Println(rep.Summary())
	return verify(ctx, c, ns, plan, rep)
}

// verify checks the ChatGroups against what was acknowledged.
func verify(ctx context.Context, c client.Client, ns string, plan *loadgen.Plan, rep *loadgen.Report) error {
	v, err := loadgen.Verify(ctx, c, ns, plan, rep)
	if err != nil {
		return err
	}
	fmt.Println("Verification:", v)
	for _, e := range v.Examples {
		fmt.Println("  ", e)
	}
	if !v.OK() {
		return fmt.Errorf("verification failed")
	}
	return nil
}

// changeTruth gives the receiver's fake provider (make run-local starts
// one) the workload's changes before they are sent, as the platform makes
// a change before it reports it, so that a resync agrees with the
// callbacks instead of undoing them.
func changeTruth(ctx context.Context, fake string, plan *loadgen.Plan) error {
	if fake == "" {
		return nil
	}
	err := restfake.PostChanges(ctx, http.DefaultClient, fake, plan.Changes()...)
	switch {
	case errors.Is(err, restfake.ErrNotAFake):
		return nil
	case err != nil:
		return err
	}
	fmt.Printf("Applied the %d changes to the fake provider's truth at %s\n", len(plan.Events), fake)
	return nil
}

// lookUp reads the receiver's webhook path, token and appID, and its resync
// endpoint when that is on this machine.
func lookUp(ctx context.Context, c client.Client, ns, name string) (loadgen.Target, imv1.Provider, string, error) {
	var rcv imv1.ChatReceiver
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &rcv); err != nil {
		return loadgen.Target{}, "", "", fmt.Errorf("reading ChatReceiver %s/%s: %w", ns, name, err)
	}
	if rcv.Status.WebhookPath == "" {
		return loadgen.Target{}, "", "", fmt.Errorf("ChatReceiver %s/%s has no status.webhookPath yet: is it Ready?", ns, name)
	}
	var secret corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: rcv.Spec.SecretRef.Name}, &secret); err != nil {
		return loadgen.Target{}, "", "", fmt.Errorf("reading the receiver's Secret: %w", err)
	}
	fake, _ := restfake.LocalEndpoint(&rcv)
	return loadgen.Target{WebhookPath: rcv.Status.WebhookPath, Token: string(secret.Data[imv1.TokenKey]), AppID: rcv.Spec.AppID},
		rcv.Spec.Provider, fake, nil
}
