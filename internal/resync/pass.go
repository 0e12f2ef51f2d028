package resync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/commit"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/memberslice"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// Submitter is the committer as resync uses it: the one callbacks go
// through.
type Submitter interface {
	Submit(target commit.Target, ev groupstate.GroupEvent) (<-chan commit.Result, error)
}

// Syncer runs resync passes for receivers.
type Syncer struct {
	// Client reads ChatGroups and writes their status.lastSync and the
	// receivers' status.lastSync.
	Client client.Client
	// Reader reads the member slices of large groups from the API server
	// (Client when nil).
	Reader client.Reader
	// Committer stores the events.
	Committer Submitter
	// Recorder sends an Event for each corrected drift (may be nil).
	Recorder events.EventRecorder
	Log      logr.Logger
	// Concurrency bounds the batches read in parallel per pass.
	Concurrency int
	// CommitTimeout bounds the wait for a group's events to be stored.
	CommitTimeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// PassResult is the outcome of one pass.
type PassResult struct {
	// Groups counts the groups read; Corrections the events applied;
	// Failed the groups that could not be read or stored; Partial the
	// groups whose member list shifted while it was read.
	Groups, Corrections, Failed, Partial int
	// Corrected counts the applied events by kind.
	Corrected map[imv1.EventKind]int
	// Err is the first failure, for the receiver's Synced condition.
	Err error
	// Time is when the pass started; Duration how long it took.
	Time     time.Time
	Duration time.Duration
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Pass reads the receiver's groups (only the given IDs when only is not
// nil; with spec.resync.discover also the provider's groups that have no
// ChatGroup yet) and repairs them. It writes status.lastSync of each
// ChatGroup it read and of the receiver.
func (s *Syncer) Pass(ctx context.Context, rcv *imv1.ChatReceiver, rc provider.RESTClient, only []string, requested string) PassResult {
	res := PassResult{Time: s.now(), Corrected: map[imv1.EventKind]int{}}
	groups, err := s.listGroups(ctx, rcv)
	if err != nil {
		res.Err = err
		s.finish(ctx, rcv, &res, requested)
		return res
	}
	ids, err := s.groupIDs(ctx, rcv, rc, groups, only)
	if err != nil {
		res.Err = err
	}
	var mu sync.Mutex
	sem := make(chan struct{}, max(s.Concurrency, 1))
	var wg sync.WaitGroup
	for batch := range chunks(ids, rc.BatchSize()) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out := s.batch(ctx, rcv, rc, groups, batch)
			mu.Lock()
			res.add(out)
			mu.Unlock()
		})
	}
	wg.Wait()
	s.finish(ctx, rcv, &res, requested)
	return res
}

// add merges a batch's result.
func (r *PassResult) add(o PassResult) {
	r.Groups += o.Groups
	r.Corrections += o.Corrections
	r.Failed += o.Failed
	r.Partial += o.Partial
	for k, n := range o.Corrected {
		r.Corrected[k] += n
	}
	if r.Err == nil {
		r.Err = o.Err
	}
}

// listGroups returns the receiver's ChatGroups by group ID.
func (s *Syncer) listGroups(ctx context.Context, rcv *imv1.ChatReceiver) (map[string]*imv1.ChatGroup, error) {
	var list imv1.ChatGroupList
	if err := s.Client.List(ctx, &list, client.InNamespace(rcv.Namespace),
		client.MatchingLabels{imv1.ReceiverLabel: rcv.Name}); err != nil {
		return nil, fmt.Errorf("listing ChatGroups: %w", err)
	}
	groups := make(map[string]*imv1.ChatGroup, len(list.Items))
	for i := range list.Items {
		cg := &list.Items[i]
		if cg.Spec.Provider == rcv.Spec.Provider && cg.Spec.AppID == rcv.Spec.AppID {
			groups[cg.Spec.GroupID] = cg
		}
	}
	return groups, nil
}

// groupIDs is the list of groups a pass reads.
func (s *Syncer) groupIDs(ctx context.Context, rcv *imv1.ChatReceiver, rc provider.RESTClient,
	groups map[string]*imv1.ChatGroup, only []string) ([]string, error) {
	if only != nil {
		return only, nil
	}
	ids := make([]string, 0, len(groups))
	for id := range groups {
		ids = append(ids, id)
	}
	if rcv.Spec.Resync == nil || !rcv.Spec.Resync.Discover {
		return ids, nil
	}
	found, err := rc.Discover(ctx)
	if err != nil {
		return ids, fmt.Errorf("discovering groups: %w", err)
	}
	for _, id := range found {
		if _, ok := groups[id]; !ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// chunks yields ids in slices of at most n.
func chunks(ids []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(ids) > 0 {
			k := min(n, len(ids))
			if !yield(ids[:k]) {
				return
			}
			ids = ids[k:]
		}
	}
}

// batch reads one batch of groups and repairs each.
func (s *Syncer) batch(ctx context.Context, rcv *imv1.ChatReceiver, rc provider.RESTClient,
	groups map[string]*imv1.ChatGroup, ids []string) PassResult {
	out := PassResult{Corrected: map[imv1.EventKind]int{}}
	at := s.now()
	snaps, err := rc.Snapshot(ctx, ids)
	if err != nil {
		out.Failed, out.Err = len(ids), err
		for _, id := range ids {
			if cg := groups[id]; cg != nil {
				s.writeGroupSync(ctx, cg, imv1.SyncStatus{Time: metav1.NewTime(at), Result: imv1.SyncFailed,
					Message: truncate(err.Error())})
			}
		}
		return out
	}
	for _, snap := range snaps {
		out.add(s.group(ctx, rcv, groups[snap.GroupID], snap, at))
	}
	return out
}

// group repairs one group from its snapshot.
func (s *Syncer) group(ctx context.Context, rcv *imv1.ChatReceiver, cg *imv1.ChatGroup, snap provider.GroupSnapshot, at time.Time) PassResult {
	out := PassResult{Groups: 1, Corrected: map[imv1.EventKind]int{}}
	spec := imv1.ChatGroupSpec{Provider: rcv.Spec.Provider, AppID: rcv.Spec.AppID, GroupID: snap.GroupID}
	var st imv1.ChatGroupStatus
	if cg != nil {
		st = cg.Status
	} else if snap.Gone {
		return out // a group that neither exists nor is mirrored
	}
	outcome := imv1.SyncStatus{Time: metav1.NewTime(at), Result: imv1.SyncSucceeded}
	if err := s.loadSlicedMembers(ctx, cg, &st); err != nil && snap.Err == nil {
		snap.Err = err // the mirror's side is unknown: change nothing
	}
	switch {
	case snap.Err != nil:
		out.Failed, out.Err = 1, fmt.Errorf("group %q: %w", snap.GroupID, snap.Err)
		outcome.Result, outcome.Message = imv1.SyncFailed, truncate(snap.Err.Error())
	case !snap.Gone && !snap.MembersComplete:
		out.Partial = 1
		outcome.Result = imv1.SyncPartial
		outcome.Message = "The member list changed while it was read; members were left as they were"
	}
	applied, err := s.store(ctx, rcv, spec, cg, Diff(spec, &st, snap, at))
	for _, ev := range applied {
		out.Corrections++
		out.Corrected[ev.Kind]++
	}
	if err != nil {
		out.Failed, out.Err = 1, err
		outcome.Result, outcome.Message = imv1.SyncFailed, truncate(err.Error())
	}
	outcome.Corrections = int32(len(applied))
	key := types.NamespacedName{Namespace: rcv.Namespace, Name: imv1.ChatGroupName(spec.Provider, spec.AppID, spec.GroupID)}
	if cg == nil && len(applied) == 0 {
		return out
	}
	if cg == nil {
		cg = &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	} else {
		outcome.Requested = cg.Annotations[imv1.ResyncRequestedAnnotation]
	}
	s.writeGroupSync(ctx, cg, outcome)
	return out
}

// store submits a group's events to the committer and waits for them; it
// returns the events that were applied, each reported as a corrected
// drift.
func (s *Syncer) store(ctx context.Context, rcv *imv1.ChatReceiver, spec imv1.ChatGroupSpec, cg *imv1.ChatGroup,
	evs []groupstate.GroupEvent) ([]groupstate.GroupEvent, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	target := commit.Target{
		Key:      types.NamespacedName{Namespace: rcv.Namespace, Name: imv1.ChatGroupName(spec.Provider, spec.AppID, spec.GroupID)},
		Spec:     spec,
		Labels:   rcv.GroupLabels(),
		Receiver: types.NamespacedName{Namespace: rcv.Namespace, Name: rcv.Name},
	}
	dones := make([]<-chan commit.Result, 0, len(evs))
	for _, ev := range evs {
		done, err := s.submit(ctx, target, ev)
		if err != nil {
			return nil, err
		}
		dones = append(dones, done)
	}
	timeout := time.NewTimer(max(s.CommitTimeout, time.Second))
	defer timeout.Stop()
	var applied []groupstate.GroupEvent
	var errs []error
	for i, done := range dones {
		select {
		case r := <-done:
			switch {
			case r.Err != nil:
				errs = append(errs, r.Err)
			case r.Result == groupstate.Applied:
				applied = append(applied, evs[i])
				s.report(rcv, target.Key, cg, &evs[i])
			}
		case <-timeout.C:
			return applied, errors.New("storing the repaired state timed out")
		case <-ctx.Done():
			return applied, ctx.Err()
		}
	}
	return applied, errors.Join(errs...)
}

// submit queues an event, waiting while the committer is overloaded.
func (s *Syncer) submit(ctx context.Context, target commit.Target, ev groupstate.GroupEvent) (<-chan commit.Result, error) {
	wait := 50 * time.Millisecond
	for {
		done, err := s.Committer.Submit(target, ev)
		if !errors.Is(err, commit.ErrOverloaded) {
			return done, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// report counts a corrected drift and sends an Event about it.
func (s *Syncer) report(rcv *imv1.ChatReceiver, key types.NamespacedName, cg *imv1.ChatGroup, ev *groupstate.GroupEvent) {
	driftCorrections.WithLabelValues(string(rcv.Spec.Provider), string(ev.Kind)).Inc()
	s.Log.Info("Corrected drift", "chatGroup", key, "kind", ev.Kind, "members", len(ev.Members))
	if s.Recorder == nil {
		return
	}
	obj := cg
	if obj == nil {
		obj = &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	}
	// The action names the kind: Events with the same action on the same
	// object are merged into one series.
	s.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "DriftCorrected", "Resync"+string(ev.Kind),
		"Resync found drift: %s%s", ev.Kind, describe(ev))
}

// describe lists an event's subject for the Event message.
func describe(ev *groupstate.GroupEvent) string {
	var parts []string
	if len(ev.Members) > 0 {
		ids := make([]string, 0, min(len(ev.Members), 10))
		for _, m := range ev.Members[:min(len(ev.Members), 10)] {
			ids = append(ids, m.UserID)
		}
		s := strings.Join(ids, ", ")
		if n := len(ev.Members) - len(ids); n > 0 {
			s += fmt.Sprintf(" and %d more", n)
		}
		parts = append(parts, s)
	}
	if ev.Owner != "" {
		parts = append(parts, "owner "+ev.Owner)
	}
	if ev.Name != "" {
		parts = append(parts, fmt.Sprintf("name %q", ev.Name))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// writeGroupSync records a group's resync outcome in status.lastSync with
// a merge patch of that field alone.
func (s *Syncer) writeGroupSync(ctx context.Context, cg *imv1.ChatGroup, outcome imv1.SyncStatus) {
	if err := patchLastSync(ctx, s.Client, cg, outcome); err != nil {
		s.Log.Error(err, "Cannot record the resync outcome", "chatGroup", client.ObjectKeyFromObject(cg))
	}
}

// finish records the pass on the receiver and in the metrics.
func (s *Syncer) finish(ctx context.Context, rcv *imv1.ChatReceiver, res *PassResult, requested string) {
	res.Duration = s.now().Sub(res.Time)
	outcome := imv1.SyncStatus{Time: metav1.NewTime(res.Time), Result: imv1.SyncSucceeded,
		Corrections: int32(res.Corrections), Groups: int32(res.Groups), Requested: requested}
	switch {
	case res.Err != nil || res.Failed > 0:
		outcome.Result = imv1.SyncFailed
		msg := fmt.Sprintf("%d of %d groups could not be read or repaired", res.Failed, res.Groups+res.Failed)
		if res.Err != nil {
			msg += ": " + res.Err.Error()
		}
		outcome.Message = truncate(msg)
	case res.Partial > 0:
		outcome.Result = imv1.SyncPartial
		outcome.Message = fmt.Sprintf("%d groups changed while they were read; their members were left as they were", res.Partial)
	}
	passDuration.WithLabelValues(string(rcv.Spec.Provider), string(outcome.Result)).Observe(res.Duration.Seconds())
	if err := patchLastSync(ctx, s.Client, rcv, outcome); err != nil {
		s.Log.Error(err, "Cannot record the resync outcome", "chatReceiver", client.ObjectKeyFromObject(rcv))
	}
}

// patchLastSync merge-patches status.lastSync alone, so that no other
// writer's field is touched. Fields the new outcome omits are set to null:
// a merge patch would otherwise keep the previous pass's values.
func patchLastSync(ctx context.Context, c client.Client, obj client.Object, outcome imv1.SyncStatus) error {
	raw, err := json.Marshal(outcome)
	if err != nil {
		return err
	}
	fields := map[string]any{"message": nil, "corrections": nil, "groups": nil, "requested": nil}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{"status": map[string]any{"lastSync": fields}})
	if err != nil {
		return err
	}
	return c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
}

// truncate keeps a message within the API's bound.
func truncate(s string) string { return groupstate.TruncateUTF8(s, 1024) }

// loadSlicedMembers fills st.Members of a large group, whose status keeps
// its members in ChatGroupMemberSlices, so that the diff compares the
// whole member list with the provider's.
func (s *Syncer) loadSlicedMembers(ctx context.Context, cg *imv1.ChatGroup, st *imv1.ChatGroupStatus) error {
	if cg == nil || st.MemberSlices == nil {
		return nil
	}
	reader := s.Reader
	if reader == nil {
		reader = s.Client
	}
	members, err := memberslice.Store{Client: s.Client, Reader: reader}.Load(ctx, cg)
	if err != nil {
		return fmt.Errorf("reading the mirror's members: %w", err)
	}
	st.Members = members
	return nil
}
