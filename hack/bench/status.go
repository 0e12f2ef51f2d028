package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/controllers"
	"chatgroup.dev/chatgroup-operator/internal/commit"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
	"chatgroup.dev/chatgroup-operator/webhookserver"
)

// The status scenarios measure what one ChatGroup write costs the API
// server, against a baseline measured in the same run: a ChatGroup with 5
// members and no history, its status patched by the bench itself at
// concurrency statusWorkers. Events go straight to the committer (the
// callback server's write path, without HTTP), with the ChatGroup
// reconciler running as in the operator, so the journal is announced and
// trimmed as it would be.
const (
	statusWorkers  = 32
	statusDuration = 15 * time.Second
)

// statusRig is a manager with the reconcilers and a committer, talking to
// the API server through a write meter.
type statusRig struct {
	client    client.Client
	reader    client.Reader
	committer *commit.Committer
	meter     *writeMeter
	stop      func()
}

func startStatusRig(env *testsupport.Env) (*statusRig, error) {
	meter := &writeMeter{}
	mgr, err := ctrl.NewManager(meter.wrap(env.Config), ctrl.Options{Scheme: env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: controllers.CacheOptions()})
	if err != nil {
		return nil, err
	}
	if err := controllers.SetupWithManager(mgr, controllers.Options{}); err != nil {
		return nil, err
	}
	opts := webhookserver.DefaultOptions()
	cm := commit.New(mgr.GetClient(), mgr.GetAPIReader(), nil, logr.Discard(), commit.Options{
		Concurrency: opts.CommitConcurrency, MaxPending: opts.MaxPending, RetryTimeout: opts.RetryTimeout,
		DrainTimeout: 5 * time.Second, Limits: opts.Limits, JournalTail: opts.JournalTail,
		SliceThreshold: opts.SliceThreshold, SliceFill: opts.SliceFill})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		return nil, errors.New("the manager's cache did not sync")
	}
	return &statusRig{client: mgr.GetClient(), reader: mgr.GetAPIReader(), committer: cm, meter: meter,
		stop: func() { cancel(); logErr(<-done) }}, nil
}

// statusRow is one line of the status table.
type statusRow struct {
	name    string
	events  int
	elapsed time.Duration
	meterReading
	latencies []time.Duration
	note      string
}

func (r statusRow) perSecond() float64 { return float64(r.events) / r.elapsed.Seconds() }

func (r statusRow) kibPerEvent(n int64) float64 {
	return float64(n) / 1024 / float64(max(r.events, 1))
}

func (r statusRow) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	l := slices.Clone(r.latencies)
	slices.Sort(l)
	return l[min(int(q*float64(len(l))), len(l)-1)]
}

// runStatusScenarios runs the baseline and every status scenario whose
// name contains only, and prints them as ratios of the baseline.
func runStatusScenarios(ctx context.Context, env *testsupport.Env, only string) error {
	type scen struct {
		name string
		run  func(context.Context, *statusRig) (statusRow, error)
	}
	all := []scen{{"status-busy", busySmallGroups}, {"status-join10k", join10k}, {"status-create100k", create100k}}
	all = slices.DeleteFunc(all, func(s scen) bool { return !strings.Contains(s.name, only) })
	if len(all) == 0 {
		return nil
	}
	rig, err := startStatusRig(env)
	if err != nil {
		return err
	}
	defer rig.stop()
	fmt.Printf("\n== status: the cost of one ChatGroup write, against a baseline in the same run\n")
	base, err := baselineWrites(ctx, rig)
	if err != nil {
		return err
	}
	fmt.Printf("%-50s %9s %7s %10s %10s %10s %8s %8s %s\n", "scenario", "events/s", "ratio", "writes/ev", "sent KiB",
		"stored KiB", "p50 ms", "p99 ms", "")
	printStatusRow(base, base)
	for _, s := range all {
		time.Sleep(settle)
		row, err := s.run(ctx, rig)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		printStatusRow(row, base)
	}
	return nil
}

// printStatusRow prints one scenario, with its rate as a ratio of the
// baseline's.
func printStatusRow(r, base statusRow) {
	fmt.Printf("%-50s %9.1f %6.2fx %10.2f %10.1f %10.1f %8.1f %8.1f %s\n", r.name, r.perSecond(), r.perSecond()/base.perSecond(),
		float64(r.writes)/float64(max(r.events, 1)), r.kibPerEvent(r.bytes), r.kibPerEvent(r.stored),
		msf(r.quantile(.5)), msf(r.quantile(.99)), r.note)
}

// benchKey is an event key of the same form as the callback server's.
func benchKey(parts ...any) string {
	sum := sha256.Sum256(fmt.Append(nil, parts...))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

func benchTarget(ns, groupID string) commit.Target {
	spec := imv1.ChatGroupSpec{Provider: tencent.Name, AppID: "1400000000", GroupID: groupID}
	return commit.Target{Key: types.NamespacedName{Namespace: ns, Name: imv1.ChatGroupName(spec.Provider, spec.AppID, spec.GroupID)},
		Spec: spec, Labels: map[string]string{"bench": ns}, Receiver: types.NamespacedName{Namespace: ns, Name: "bench"}}
}

// submit stores one event and waits for it.
func submit(rig *statusRig, target commit.Target, ev groupstate.GroupEvent) (time.Duration, error) {
	start := time.Now()
	ch, err := rig.committer.Submit(target, ev)
	if err != nil {
		return 0, err
	}
	res := <-ch
	return time.Since(start), res.Err
}

// members returns n members named prefix-<i>.
func members(prefix string, from, n int) []groupstate.Member {
	ms := make([]groupstate.Member, n)
	for i := range ms {
		ms[i] = groupstate.Member{UserID: fmt.Sprintf("%s-%07d", prefix, from+i), Role: imv1.RoleMember}
	}
	return ms
}

func createEvent(groupID string, ms []groupstate.Member, t time.Time) groupstate.GroupEvent {
	return groupstate.GroupEvent{Provider: tencent.Name, AppID: "1400000000", GroupID: groupID, Kind: imv1.EventCreated,
		Owner: ms[0].UserID, Name: "bench " + groupID, Type: "Public", Members: ms, EventTime: t,
		Key: benchKey(groupID, "create", t)}
}

func joinEvent(groupID string, ms []groupstate.Member, t time.Time) groupstate.GroupEvent {
	return groupstate.GroupEvent{Provider: tencent.Name, AppID: "1400000000", GroupID: groupID,
		Kind: imv1.EventMembersJoined, Operator: "admin", Members: ms, EventTime: t,
		Key: benchKey(groupID, "join", ms[0].UserID, t)}
}

// parallel runs fn(worker, i) for i = 0, 1, ... on each of n workers until
// the duration is over, and returns the events done and their latencies.
func parallel(n int, d time.Duration, fn func(w, i int) (time.Duration, error)) (int, []time.Duration, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				l, err := fn(w, i)
				mu.Lock()
				lat = append(lat, l)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return len(lat), lat, firstErr
}

// baselineWrites patches the status of 5-member ChatGroups without
// history, one group per worker, as fast as the workers go.
func baselineWrites(ctx context.Context, rig *statusRig) (statusRow, error) {
	const ns = "bench-status-base"
	if err := testsupport.CreateNamespace(ctx, rig.client, ns); err != nil {
		return statusRow{}, err
	}
	groups := make([]*imv1.ChatGroup, statusWorkers)
	for w := range groups {
		groupID := fmt.Sprintf("@TGS#base%d", w)
		if _, err := submit(rig, benchTarget(ns, groupID), createEvent(groupID, members("user", 0, 5), time.Now())); err != nil {
			return statusRow{}, err
		}
		groups[w] = &imv1.ChatGroup{}
		if err := rig.reader.Get(ctx, benchTarget(ns, groupID).Key, groups[w]); err != nil {
			return statusRow{}, err
		}
		groups[w].Status.Journal, groups[w].Status.RecentKeys = nil, nil
	}
	m0 := rig.meter.snapshot()
	start := time.Now()
	n, lat, err := parallel(statusWorkers, statusDuration, func(w, i int) (time.Duration, error) {
		t0 := time.Now()
		cg := groups[w]
		base := cg.DeepCopy()
		cg.Status.EventsApplied = int64(i + 1)
		cg.Status.LastEvent = &imv1.LastEvent{Kind: imv1.EventInfoChanged, Time: metav1.NowMicro(), Key: benchKey(w, i)}
		err := rig.client.Status().Patch(ctx, cg, client.MergeFrom(base))
		return time.Since(t0), err
	})
	return statusRow{name: "baseline: 5 members, no history, patched by the bench", events: n,
		elapsed: time.Since(start), meterReading: rig.meter.snapshot().sub(m0), latencies: lat}, err
}

// busySmallGroups sends rejoins of existing members (applied and
// journaled, no tombstones) to 5-member groups, one group per worker, after
// enough events to fill a full history.
func busySmallGroups(ctx context.Context, rig *statusRig) (statusRow, error) {
	const ns = "bench-status-busy"
	if err := testsupport.CreateNamespace(ctx, rig.client, ns); err != nil {
		return statusRow{}, err
	}
	event := func(w, i int) (time.Duration, error) {
		groupID := fmt.Sprintf("@TGS#busy%d", w)
		if i == 0 {
			return submit(rig, benchTarget(ns, groupID), createEvent(groupID, members("user", 0, 5), time.Now()))
		}
		return submit(rig, benchTarget(ns, groupID), joinEvent(groupID, members("user", i%5, 1), time.Now()))
	}
	warm := 130 // more events than the journal and the dedupe window hold
	if _, _, err := parallel(statusWorkers, time.Hour, func(w, i int) (time.Duration, error) {
		if i >= warm {
			return 0, errStop
		}
		return event(w, i)
	}); err != nil && !errors.Is(err, errStop) {
		return statusRow{}, err
	}
	m0 := rig.meter.snapshot()
	start := time.Now()
	n, lat, err := parallel(statusWorkers, statusDuration, func(w, i int) (time.Duration, error) { return event(w, warm+i) })
	return statusRow{name: "busy small groups: 5 members, full history", events: n, elapsed: time.Since(start),
		meterReading: rig.meter.snapshot().sub(m0), latencies: lat, note: groupSize(ctx, rig, benchTarget(ns, "@TGS#busy0").Key)}, err
}

var errStop = errors.New("stop")

// groupSize describes a stored ChatGroup's size.
func groupSize(ctx context.Context, rig *statusRig, key types.NamespacedName) string {
	cg := &imv1.ChatGroup{}
	if err := rig.reader.Get(ctx, key, cg); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("(status: %d journal entries, %d dedupe keys, %d members listed of %d)",
		len(cg.Status.Journal), len(cg.Status.RecentKeys), len(cg.Status.Members), cg.Status.MemberCount)
}
