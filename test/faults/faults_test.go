//go:build faults

// Package faults runs the callback server under load while things go
// wrong, against a real API server, and checks that every acknowledged
// event ends up in the ChatGroups exactly once. Run with `make test-faults`.
package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/loadgen"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
	"chatgroup.dev/chatgroup-operator/webhookserver"
)

// fault runs a workload against replicas of the callback server, calls
// during (if set) once the load is running, and verifies the outcome.
type fault struct {
	workload loadgen.Workload
	opts     loadgen.Options
	replicas int
	during   func(t *testing.T, env *testsupport.Env)
}

// settleTimeout bounds the wait for events answered 503 to be committed by
// the server's background retries (which go on for 10 minutes).
const settleTimeout = 3 * time.Minute

func (f fault) run(t *testing.T) *loadgen.Report {
	t.Helper()
	env := testsupport.Start(t)
	ctx := context.Background()
	ns := "faults"
	target, err := testsupport.LoadReceiver(ctx, env.Client, ns, f.workload.Provider)
	if err != nil {
		t.Fatal(err)
	}
	for range max(f.replicas, 1) {
		r, err := testsupport.StartCallbackServer(env.Config, env.Scheme, webhookserver.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Stop() })
		target.BaseURLs = append(target.BaseURLs, r.URL)
	}
	f.workload.GroupPrefix = "fault"
	plan, err := loadgen.NewPlan(f.workload)
	if err != nil {
		t.Fatal(err)
	}
	if f.during != nil {
		go func() {
			time.Sleep(2 * time.Second)
			f.during(t, env)
		}()
	}
	rep, err := loadgen.Run(ctx, plan, target, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Summary())

	// What was acknowledged must be there now.
	v, err := loadgen.Verify(ctx, env.Client, ns, plan, rep)
	if err != nil {
		t.Fatal(err)
	}
	logVerification(t, "acknowledged events", v)
	if !v.OK() {
		t.Errorf("acknowledged events were lost or applied twice: %s", v)
	}
	// Every event got an answer that promises it will be stored: 200, or
	// 503 (queued and retried in the background). Nothing is lost
	// silently, so the test cannot pass with everything refused.
	if n := rep.Unanswered(); n > 0 {
		t.Errorf("%d of %d events got neither 200 nor 503 on any delivery", n, len(plan.Events))
	}
	// Events answered 503 must land once the retries have run.
	v = settle(t, env, ns, plan, rep.Accepted())
	if !v.OK() {
		t.Errorf("events answered 200 or 503 were lost or applied twice after the retries: %s", v)
	}
	return rep
}

// settle verifies every accepted event, again until it holds or
// settleTimeout passes, and returns the last verification.
func settle(t *testing.T, env *testsupport.Env, ns string, plan *loadgen.Plan, accepted *loadgen.Report) *loadgen.Verification {
	t.Helper()
	begin := time.Now()
	for {
		v, err := loadgen.Verify(context.Background(), env.Client, ns, plan, accepted)
		if err != nil {
			t.Fatal(err)
		}
		if v.OK() || time.Since(begin) > settleTimeout {
			logVerification(t, fmt.Sprintf("every event answered 200 or 503, after %.1fs", time.Since(begin).Seconds()), v)
			return v
		}
		time.Sleep(time.Second)
	}
}

func logVerification(t *testing.T, what string, v *loadgen.Verification) {
	t.Helper()
	t.Logf("verification of %s: %s", what, v)
	for _, e := range v.Examples {
		t.Log("  ", e)
	}
}

// TestFault_apiServerRestartsDuringLoad stops the API server for a few
// seconds under load: callbacks in the outage get 503, nothing that got 200
// is lost, and the server recovers.
func TestFault_apiServerRestartsDuringLoad(t *testing.T) {
	rep := fault{
		workload: loadgen.Workload{Provider: imv1.ProviderTencent, Events: 3000, Groups: 50, LeaveFraction: 0.3, Seed: 11},
		opts:     loadgen.Options{Rate: 300, Concurrency: 64},
		during: func(t *testing.T, env *testsupport.Env) {
			// A crash, not a graceful stop: graceful shutdown under load
			// outlasts envtest's stop timeout.
			api := env.ControlPlane.APIServer
			if err := killProcess("kube-apiserver", "--secure-port="+api.SecureServing.Port); err != nil {
				t.Errorf("killing the API server: %v", err)
				return
			}
			t.Log("API server killed")
			time.Sleep(3 * time.Second)
			if err := api.Start(); err != nil {
				t.Errorf("restarting the API server: %v", err)
				return
			}
			t.Log("API server restarted")
		},
	}.run(t)
	if rep.Failed[503] == 0 {
		t.Error("no callback was refused while the API server was down: the outage did not happen")
	}
}

// TestFault_twoReplicasShareTheLoad spreads deliveries over two callback
// servers writing the same groups.
func TestFault_twoReplicasShareTheLoad(t *testing.T) {
	fault{
		workload: loadgen.Workload{Provider: imv1.ProviderTencent, Events: 2000, Groups: 20, LeaveFraction: 0.3, Seed: 12},
		opts:     loadgen.Options{Rate: 100, Concurrency: 32},
		replicas: 2,
	}.run(t)
}

// TestFault_everyEventTwiceAndOutOfOrder delivers every event twice, in
// shuffled order, to two replicas: each must take effect once.
func TestFault_everyEventTwiceAndOutOfOrder(t *testing.T) {
	for _, provider := range []imv1.Provider{imv1.ProviderTencent, imv1.ProviderOpenIM} {
		t.Run(string(provider), func(t *testing.T) {
			rep := fault{
				workload: loadgen.Workload{Provider: provider, Events: 1500, Groups: 20, LeaveFraction: 0.3,
					DuplicateRate: 1, ReorderWindow: 100, Seed: 13},
				opts:     loadgen.Options{Rate: 150, Concurrency: 32},
				replicas: 2,
			}.run(t)
			if rep.Deliveries < 2*1500*9/10 {
				t.Errorf("only %d deliveries: the duplicates were not sent", rep.Deliveries)
			}
		})
	}
}

// TestFault_badRequestsMixedIn mixes oversized, malformed, unsigned and
// misaddressed requests into the load: all refused, none disturbing the
// valid ones.
func TestFault_badRequestsMixedIn(t *testing.T) {
	rep := fault{
		workload: loadgen.Workload{Provider: imv1.ProviderTencent, Events: 2000, Groups: 20, LeaveFraction: 0.3, Seed: 14},
		opts:     loadgen.Options{Rate: 100, Concurrency: 32, BadFraction: 0.2},
	}.run(t)
	if rep.BadSent < 300 || rep.BadAccepted != 0 {
		t.Errorf("%d bad requests sent, %d accepted; want >= 300 sent and none accepted", rep.BadSent, rep.BadAccepted)
	}
}

// killProcess sends SIGKILL to the process whose command line names binary
// and contains arg.
func killProcess(binary, arg string) error {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range cmdlines {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		args := strings.Split(string(raw), "\x00")
		if filepath.Base(args[0]) != binary || !slices.Contains(args, arg) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(path, "/proc/%d/cmdline", &pid); err != nil {
			return err
		}
		return syscall.Kill(pid, syscall.SIGKILL)
	}
	return fmt.Errorf("no %s process with %s", binary, arg)
}
