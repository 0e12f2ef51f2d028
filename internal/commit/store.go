package commit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
)

// drop gives up on accepted events: it counts them, logs them and reports
// them as a Warning Event on the receiver, so that no loss is silent.
func (c *Committer) drop(key types.NamespacedName, batch []*request, reason string, err error) {
	droppedEvents.WithLabelValues(reason).Add(float64(len(batch)))
	c.log.Error(err, "Dropped accepted events", "chatGroup", key, "events", len(batch), "reason", reason)
	rcv := batch[0].target.Receiver
	obj := &imv1.ChatReceiver{ObjectMeta: metav1.ObjectMeta{Namespace: rcv.Namespace, Name: rcv.Name}}
	if c.recorder != nil {
		c.recorder.Eventf(obj, nil, corev1.EventTypeWarning, "EventsDropped", "Commit",
			"Dropped %d accepted events for ChatGroup %s (%s): %v", len(batch), key.Name, reason, err)
	}
	fail(batch, err)
}

const maxConflictRetries = 10

// writeTimeout bounds the API calls of one commit attempt, except writing
// a new generation of member slices (rewriteTimeout).
const writeTimeout = 10 * time.Second

// commit applies a batch to the ChatGroup and writes its status once,
// re-reading and re-applying on conflicts.
func (c *Committer) commit(q *groupQueue, batch []*request) ([]groupstate.ApplyResult, error) {
	var cancels cancelList
	defer cancels.cancel()
	ctx := cancels.timeout(c.ctx, writeTimeout)
	batchEvents := eventsOf(batch)
	target := batch[0].target

	cg := q.last
	fromAPI := false
	for range maxConflictRetries {
		var fence *metav1.MicroTime
		if cg == nil {
			var err error
			cg, fence, err = c.getOrCreate(ctx, target, fromAPI, batchEvents)
			if errors.Is(err, errFenced) {
				return allStale(len(batch)), nil
			}
			if err != nil {
				return nil, err
			}
		}
		if err := c.checkGroup(ctx, q, cg, target); err != nil {
			return nil, err
		}
		results, work, plan, err := c.reduce(ctx, q, cg, fence, batchEvents)
		if err != nil {
			return nil, err
		}
		if plan.keep != 0 {
			// Writing a new generation of slices may have taken most of
			// the time; the status write gets its own.
			ctx = cancels.timeout(c.ctx, writeTimeout)
		}
		if equality.Semantic.DeepEqual(cg.Status, work.Status) {
			q.last = cg
			return results, nil
		}
		err = c.client.Status().Patch(ctx, work, client.MergeFromWithOptions(cg, client.MergeFromWithOptimisticLock{}))
		switch {
		case err == nil:
			apiWrites.WithLabelValues("status", "ok").Inc()
			q.last = work
			c.afterWrite(ctx, q, work, plan)
			return results, nil
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			apiWrites.WithLabelValues("status", "conflict").Inc()
			commitConflicts.Inc()
			cg, q.last, fromAPI = nil, nil, true
		case tooLarge(err):
			apiWrites.WithLabelValues("status", "error").Inc()
			q.last = nil
			return nil, PermanentError{fmt.Errorf("writing ChatGroup %s status: %w", target.Key, err)}
		default:
			apiWrites.WithLabelValues("status", "error").Inc()
			q.last = nil
			return nil, fmt.Errorf("writing ChatGroup %s status: %w", target.Key, err)
		}
	}
	return nil, fmt.Errorf("writing ChatGroup %s status: still conflicting after %d attempts", target.Key, maxConflictRetries)
}

// cancelList holds the cancel functions of a commit's contexts.
type cancelList []context.CancelFunc

func (l *cancelList) timeout(parent context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(parent, d)
	*l = append(*l, cancel)
	return ctx
}

func (l *cancelList) cancel() {
	for _, cancel := range *l {
		cancel()
	}
}

func eventsOf(batch []*request) []groupstate.GroupEvent {
	evs := make([]groupstate.GroupEvent, len(batch))
	for i, req := range batch {
		evs[i] = req.ev
	}
	return evs
}

// checkGroup refuses a ChatGroup of another group, and gives it the
// receiver's labels it lacks.
func (c *Committer) checkGroup(ctx context.Context, q *groupQueue, cg *imv1.ChatGroup, target Target) error {
	if cg.Spec != target.Spec {
		return PermanentError{fmt.Errorf("ChatGroup %s exists for another group (%s %q %q)",
			target.Key, cg.Spec.Provider, cg.Spec.AppID, cg.Spec.GroupID)}
	}
	if err := c.ensureLabels(ctx, cg, target); err != nil {
		q.last = nil
		return err
	}
	return nil
}

// tooLarge reports whether the API server refused a write for its size:
// 413, or etcd's "request is too large" (a 500). Retrying cannot help.
func tooLarge(err error) bool {
	return apierrors.IsRequestEntityTooLargeError(err) || strings.Contains(err.Error(), "request is too large")
}

// ensureLabels gives a ChatGroup the receiver's labels (provider, appID,
// receiver and groupLabels) that it lacks, keeping the labels it has: a
// user may pre-create a ChatGroup, and selectors must still find it.
func (c *Committer) ensureLabels(ctx context.Context, cg *imv1.ChatGroup, target Target) error {
	var missing bool
	for k, v := range target.Labels {
		if _, ok := cg.Labels[k]; !ok && v != "" {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	base := cg.DeepCopy()
	if cg.Labels == nil {
		cg.Labels = map[string]string{}
	}
	for k, v := range target.Labels {
		if _, ok := cg.Labels[k]; !ok {
			cg.Labels[k] = v
		}
	}
	if err := c.client.Patch(ctx, cg, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		apiWrites.WithLabelValues("labels", "error").Inc()
		if apierrors.IsInvalid(err) {
			return PermanentError{fmt.Errorf("labelling ChatGroup %s: %w", target.Key, err)}
		}
		return fmt.Errorf("labelling ChatGroup %s: %w", target.Key, err)
	}
	apiWrites.WithLabelValues("labels", "ok").Inc()
	return nil
}

// errFenced means every event of a batch is older than the disband of a
// ChatGroup that ttlAfterDisband deleted: nothing is to be re-created.
var errFenced = errors.New("events of a deleted incarnation")

func allStale(n int) []groupstate.ApplyResult {
	results := make([]groupstate.ApplyResult, n)
	for i := range results {
		results[i] = groupstate.Stale
	}
	return results
}

// fence returns the disband time the receiver remembers for a deleted
// ChatGroup, or nil.
func (c *Committer) fence(ctx context.Context, target Target) (*metav1.MicroTime, error) {
	rcv := &imv1.ChatReceiver{}
	if err := c.client.Get(ctx, target.Receiver, rcv); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading ChatReceiver %s: %w", target.Receiver, err)
	}
	return rcv.Status.FenceFor(target.Key.Name), nil
}

// reduce applies a batch to a copy of the ChatGroup as stored, over its
// full member list, and decides where the members go.
func (c *Committer) reduce(ctx context.Context, q *groupQueue, cg *imv1.ChatGroup, fence *metav1.MicroTime,
	events []groupstate.GroupEvent) ([]groupstate.ApplyResult, *imv1.ChatGroup, memberPlan, error) {
	members, err := c.loadMembers(ctx, q, cg)
	if err != nil {
		return nil, nil, memberPlan{}, err
	}
	work := cg.DeepCopy()
	if fence != nil && work.Status.DisbandedAt == nil {
		// Re-created after ttlAfterDisband deleted it: the old
		// incarnation's events stay fenced off.
		work.Status.DisbandedAt = fence
	}
	if cg.Status.MemberSlices != nil {
		work.Status.Members = members
	}
	results := groupstate.Reduce(&work.Status, events, c.limits(len(members), events, cg.Status.MemberSlices != nil))
	trimJournal(&work.Status, c.opts.JournalTail)
	plan, err := c.placeMembers(cg, work, members)
	if err != nil {
		return nil, nil, memberPlan{}, err
	}
	return results, work, plan, nil
}

// limits are the reducer's limits for a batch. When the group is sliced,
// or the batch could take it past the threshold, its member list will not
// be stored in the status, so the status byte budget leaves it alone.
func (c *Committer) limits(members int, events []groupstate.GroupEvent, sliced bool) groupstate.Limits {
	lim := c.opts.Limits
	for _, ev := range events {
		members += len(ev.Members)
	}
	lim.MembersElsewhere = sliced || members > c.opts.SliceThreshold
	return lim
}

// getOrCreate reads the ChatGroup (from the cache unless fromAPI) and
// creates it when it does not exist, unless every event is fenced off by
// the disband of a deleted incarnation (errFenced). It returns that
// disband time for a group it created.
func (c *Committer) getOrCreate(ctx context.Context, target Target, fromAPI bool, evs []groupstate.GroupEvent) (*imv1.ChatGroup, *metav1.MicroTime, error) {
	var reader client.Reader = c.client
	if fromAPI {
		reader = c.reader
	}
	cg := &imv1.ChatGroup{}
	err := reader.Get(ctx, target.Key, cg)
	if err == nil {
		return cg, nil, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, nil, fmt.Errorf("reading ChatGroup %s: %w", target.Key, err)
	}
	fence, err := c.fence(ctx, target)
	if err != nil {
		return nil, nil, err
	}
	if fence != nil && !slices.ContainsFunc(evs, func(ev groupstate.GroupEvent) bool { return ev.EventTime.After(fence.Time) }) {
		return nil, nil, errFenced
	}
	cg, err = c.create(ctx, target)
	return cg, fence, err
}

// create creates the ChatGroup; when it exists already, it is read from
// the API server.
func (c *Committer) create(ctx context.Context, target Target) (*imv1.ChatGroup, error) {
	cg := &imv1.ChatGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: target.Key.Namespace, Name: target.Key.Name, Labels: target.Labels},
		Spec:       target.Spec,
	}
	err := c.client.Create(ctx, cg)
	switch {
	case err == nil:
		apiWrites.WithLabelValues("create", "ok").Inc()
		return cg, nil
	case apierrors.IsAlreadyExists(err):
		apiWrites.WithLabelValues("create", "conflict").Inc()
		cg = &imv1.ChatGroup{}
		if err := c.reader.Get(ctx, target.Key, cg); err != nil {
			return nil, fmt.Errorf("reading ChatGroup %s: %w", target.Key, err)
		}
		return cg, nil
	case apierrors.IsInvalid(err) || apierrors.IsForbidden(err) && !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		apiWrites.WithLabelValues("create", "error").Inc()
		return nil, PermanentError{fmt.Errorf("creating ChatGroup %s: %w", target.Key, err)}
	default:
		apiWrites.WithLabelValues("create", "error").Inc()
		return nil, fmt.Errorf("creating ChatGroup %s: %w", target.Key, err)
	}
}

// trimJournal drops the journal entries that are done with: published as
// Kubernetes Events (announcedSeq) and passed by the cursor of every
// trigger that selects the group (status.triggers lists exactly those). The
// last tail entries stay, for kubectl describe and for a trigger created
// later (a cleanup trigger added after a disband still sees the
// Disbanded entry). The journal's own bound still applies to entries that
// are not done with.
func trimJournal(st *imv1.ChatGroupStatus, tail int) {
	passed := st.AnnouncedSeq
	for _, ts := range st.Triggers {
		passed = min(passed, ts.Cursor)
	}
	drop := 0
	for drop < len(st.Journal)-tail && st.Journal[drop].Seq <= passed {
		drop++
	}
	if drop > 0 {
		st.Journal = slices.Clone(st.Journal[drop:])
	}
}
