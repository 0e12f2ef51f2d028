// Command bench measures the callback server under load against a real
// control plane (envtest: etcd and kube-apiserver from bin/k8s), with the
// operator in-process. Each scenario runs twice in the same process, on the
// same API server, one mode after the other: group commit (the default) and
// the one-write-per-event baseline (--one-write-per-event). It prints both
// and their ratio, and fails when an acknowledged event was lost.
//
//	go run ./hack/bench              # every scenario (make bench)
//	go run ./hack/bench -only hot    # one scenario
//	go run ./hack/bench -only status # the ChatGroup write-cost scenarios
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/cli"
	"chatgroup.dev/chatgroup-operator/internal/loadgen"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
	"chatgroup.dev/chatgroup-operator/webhookserver"
)

// scenario is one workload, run in both modes.
type scenario struct {
	name     string
	what     string
	workload loadgen.Workload
	opts     loadgen.Options
}

func scenarios(scale float64) []scenario {
	n := func(events int) int { return max(int(float64(events)*scale), 100) }
	return []scenario{{
		name: "hot",
		what: "10 hot groups, as fast as 256 connections go",
		workload: loadgen.Workload{Provider: tencent.Name, Events: n(8000), Groups: 10,
			LeaveFraction: 0.25, Seed: 1},
		opts: loadgen.Options{Concurrency: 256},
	}, {
		name: "spread",
		what: "1,000 groups, as fast as 64 connections go",
		workload: loadgen.Workload{Provider: tencent.Name, Events: n(8000), Groups: 1000,
			LeaveFraction: 0.25, Seed: 2},
		opts: loadgen.Options{Concurrency: 64},
	}, {
		name: "rate1000",
		what: "1,000 callbacks/s over 1,000 groups (latency goal: p99 < 250ms)",
		workload: loadgen.Workload{Provider: tencent.Name, Events: n(15000), Groups: 1000,
			LeaveFraction: 0.25, Seed: 3},
		opts: loadgen.Options{Rate: 1000, Concurrency: 256},
	}, {
		name: "skewed-openim",
		what: "OpenIM, 1,000 groups with 80% of events on 10, 10% duplicates, reordered",
		workload: loadgen.Workload{Provider: openim.Name, Events: n(8000), Groups: 1000, HotGroups: 10,
			HotFraction: 0.8, LeaveFraction: 0.25, DuplicateRate: 0.1, ReorderWindow: 50, Seed: 4},
		opts: loadgen.Options{Concurrency: 64},
	}}
}

// settle is the pause before each run.
const settle = 15 * time.Second

// result is one scenario in one mode.
type result struct {
	rep          *loadgen.Report
	verification *loadgen.Verification
	writes       float64
}

func main() {
	fs := cli.NewFlagSet("bench", "go run ./hack/bench [flags]")
	only := fs.String("only", "", "Run only the scenarios whose names contain this.")
	scale := fs.Float64("scale", 1, "Multiply every scenario's event count.")
	memory := fs.Int("memory-groups", 10000, "Measure the manager's heap with this many ChatGroups cached (0 skips).")
	verbose := fs.Bool("v", false, "Log the manager's output.")
	cpuProfile := fs.String("cpuprofile", "", "Write a CPU profile of the operator and load generator to this file.")
	cli.Parse(fs)
	cli.SetUpLogging(os.Stderr, *verbose)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*only, *scale, *memory); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(only string, scale float64, memoryGroups int) error {
	fmt.Printf("Machine: %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Println("Starting the control plane (etcd, kube-apiserver)...")
	env, err := testsupport.New()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	ctx := context.Background()

	lost := 0
	for i, sc := range scenarios(scale) {
		if !strings.Contains(sc.name, only) {
			continue
		}
		fmt.Printf("\n== %s: %s\n", sc.name, sc.what)
		var results [2]result
		for m, baseline := range []bool{false, true} {
			// A saturated run leaves requests queued in the API server;
			// let them drain so they do not weigh on the next run.
			time.Sleep(settle)
			ns := fmt.Sprintf("bench-%d-%d", i, m)
			res, err := runMode(ctx, env, ns, sc, baseline)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			results[m] = res
			lost += res.verification.Lost + res.verification.DuplicateEffects
		}
		printComparison(results)
	}
	if err := runStatusScenarios(ctx, env, only); err != nil {
		return err
	}
	if memoryGroups > 0 && strings.Contains("memory", only) {
		if err := measureMemory(ctx, env, memoryGroups); err != nil {
			return err
		}
	}
	if lost > 0 {
		return errors.New("acknowledged events were lost or applied twice")
	}
	return nil
}

// runMode starts a manager with the callback server in one mode, sends the
// scenario's load to it, and verifies the result.
func runMode(ctx context.Context, env *testsupport.Env, ns string, sc scenario, baseline bool) (result, error) {
	target, err := testsupport.LoadReceiver(ctx, env.Client, ns, sc.workload.Provider)
	if err != nil {
		return result{}, err
	}
	opts := webhookserver.DefaultOptions()
	opts.OneWritePerEvent = baseline
	replica, err := testsupport.StartCallbackServer(env.Config, env.Scheme, opts)
	if err != nil {
		return result{}, err
	}
	defer func() { logErr(replica.Stop()) }()
	target.BaseURLs = []string{replica.URL}

	w := sc.workload
	w.GroupPrefix = ns
	plan, err := loadgen.NewPlan(w)
	if err != nil {
		return result{}, err
	}
	before := counters("chatgroup_commit_api_writes_total")
	rep, err := loadgen.Run(ctx, plan, target, sc.opts)
	if err != nil {
		return result{}, err
	}
	after := counters("chatgroup_commit_api_writes_total")
	writes, breakdown := 0.0, []string{}
	for labels, n := range after {
		if d := n - before[labels]; d > 0 {
			writes += d
			breakdown = append(breakdown, fmt.Sprintf("%s=%.0f", labels, d))
		}
	}
	slices.Sort(breakdown)
	v, err := loadgen.Verify(ctx, env.Client, ns, plan, rep)
	if err != nil {
		return result{}, err
	}
	mode := map[bool]string{false: "group commit", true: "baseline"}[baseline]
	fmt.Printf("%-12s %s\n%-12s API writes: %s\n%-12s verification: %s\n", mode, rep.Summary(), "", strings.Join(breakdown, " "), "", v)
	for _, e := range v.Examples {
		fmt.Println("    ", e)
	}
	return result{rep: rep, verification: v, writes: writes}, nil
}

func printComparison(r [2]result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tevents/s\tp50 ms\tp99 ms\tmax ms\tAPI writes/event\tlost\t")
	for m, name := range []string{"group commit", "baseline"} {
		rep := r[m].rep
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t%.1f\t%.2f\t%d\t\n", name, rep.Throughput(), msf(rep.Quantile(.5)),
			msf(rep.Quantile(.99)), msf(rep.Quantile(1)), r[m].writes/float64(max(rep.AckedEvents(), 1)), r[m].verification.Lost)
	}
	_ = tw.Flush()
	fmt.Printf("ratio (group commit / baseline): throughput %.2fx, p99 latency %.2fx, API writes per event %.2fx\n",
		r[0].rep.Throughput()/r[1].rep.Throughput(),
		msf(r[0].rep.Quantile(.99))/msf(r[1].rep.Quantile(.99)),
		(r[0].writes/float64(r[0].rep.AckedEvents()))/(r[1].writes/float64(r[1].rep.AckedEvents())))
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// counters reads a counter from the manager's registry, by label values.
func counters(name string) map[string]float64 {
	out := map[string]float64{}
	families, err := metrics.Registry.Gather()
	if err != nil {
		return out
	}
	for _, f := range families {
		if f.GetName() != name || f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			out[strings.Join(labels, "/")] += m.GetCounter().GetValue()
		}
	}
	return out
}

// measureMemory creates n ChatGroups with five members each and reports
// how much the manager's heap grows when its cache holds them.
func measureMemory(ctx context.Context, env *testsupport.Env, n int) error {
	const ns = "bench-memory"
	fmt.Printf("\n== memory: a manager caching %d ChatGroups (5 members, full 64-entry journal, 128 dedupe keys)\n", n)
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	if err := createGroups(ctx, env, ns, n); err != nil {
		return err
	}
	before := heapInUse()
	cfg := *env.Config
	mgr, err := ctrl.NewManager(&cfg, ctrl.Options{Scheme: env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		return err
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() { cancel(); logErr(<-done) }()
	var list imv1.ChatGroupList
	start := time.Now()
	for { // the first List starts the informer and waits for it to sync
		err := mgr.GetCache().List(ctx, &list)
		var notStarted *cache.ErrCacheNotStarted
		if !errors.As(err, &notStarted) {
			if err != nil {
				return err
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	synced := time.Since(start)
	after := heapInUse()
	fmt.Printf("cached %d ChatGroups in %.1fs; heap in use grew by %.1f MiB (%.1f KiB per ChatGroup)\n",
		len(list.Items), synced.Seconds(), float64(after-before)/(1<<20), float64(after-before)/1024/float64(len(list.Items)))
	runtime.KeepAlive(list)
	return nil
}

// createGroups creates n ChatGroups with 32 writers in parallel.
func createGroups(ctx context.Context, env *testsupport.Env, ns string, n int) error {
	ids := make(chan int)
	errs := make(chan error, 32)
	for range 32 {
		go func() {
			var err error
			for i := range ids {
				if err == nil {
					err = createGroup(ctx, env, ns, i)
				}
			}
			errs <- err
		}()
	}
	for i := range n {
		ids <- i
	}
	close(ids)
	var err error
	for range 32 {
		err = errors.Join(err, <-errs)
	}
	return err
}

func createGroup(ctx context.Context, env *testsupport.Env, ns string, i int) error {
	spec := imv1.ChatGroupSpec{Provider: tencent.Name, AppID: "1400000000", GroupID: fmt.Sprintf("@TGS#mem%d", i)}
	cg := &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Namespace: ns,
		Name: imv1.ChatGroupName(spec.Provider, spec.AppID, spec.GroupID)}, Spec: spec}
	if err := env.Client.Create(ctx, cg); err != nil {
		return err
	}
	now := metav1.NowMicro()
	for u := range 5 {
		cg.Status.Members = append(cg.Status.Members, imv1.GroupMember{UserID: fmt.Sprintf("user-%d-%d", i, u),
			Role: imv1.RoleMember, JoinedAt: &now})
	}
	cg.Status.MemberCount = 5
	// A busy group's status is mostly its bounded history: a full journal
	// and dedupe window, as with the default limits.
	for seq := range int64(64) {
		key := fmt.Sprintf("%032x", seq+int64(i)<<8)
		cg.Status.Journal = append(cg.Status.Journal, imv1.JournalEntry{Seq: seq + 1, Kind: imv1.EventMembersJoined,
			Members: []string{fmt.Sprintf("user-%d-%d", i, seq)}, Operator: "admin", Time: now, Key: key})
		cg.Status.RecentKeys = append(cg.Status.RecentKeys, key, key+"x")
	}
	cg.Status.LastSeq, cg.Status.EventsApplied = 64, 64
	cg.Status.Type, cg.Status.Name, cg.Status.Owner = "Public", fmt.Sprintf("group %d", i), cg.Status.Members[0].UserID
	return env.Client.Status().Update(ctx, cg)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func logErr(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: manager:", err)
	}
}
