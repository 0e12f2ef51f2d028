package webhookserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

var (
	// errOverloaded means too many events are already waiting.
	errOverloaded = errors.New("too many events waiting to be stored")
	// errNotStored means the event missed its budget; it is still retried.
	errNotStored = errors.New("event not stored within the commit budget; it is being retried")
)

// permanentError is a commit failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// groupTarget says which ChatGroup an event goes to and how to create it.
type groupTarget struct {
	Key      types.NamespacedName
	Spec     imv1.ChatGroupSpec
	Labels   map[string]string
	Receiver types.NamespacedName
}

type commitRequest struct {
	ev       GroupEvent
	target   groupTarget
	accepted time.Time
	done     chan commitResult // buffered: the waiter may have given up
}

type commitResult struct {
	result Result
	err    error
}

// groupQueue holds the events waiting for one ChatGroup, and the object as
// last written, which is the base of the next batch while the queue lives.
type groupQueue struct {
	items []*commitRequest
	last  *imv1.ChatGroup
}

// committer stores events in ChatGroup status: one queue per ChatGroup,
// queued events merged into one optimistic-concurrency status write per
// batch, groups written in parallel up to a bound, failed batches retried
// with backoff until RetryTimeout.
type committer struct {
	client   client.Client
	reader   client.Reader
	recorder events.EventRecorder
	log      logr.Logger
	opts     Options
	now      func() time.Time

	sem chan struct{}
	ctx context.Context

	mu      sync.Mutex
	queues  map[types.NamespacedName]*groupQueue
	pending int
	idle    *sync.Cond
	// recent keeps the objects last written for groups whose queue ran
	// empty, so the next event for the group does not start from a cache
	// that has not seen our own write yet (which costs a failed create or
	// a conflicting patch). Bounded by maxRecent.
	recent map[types.NamespacedName]*imv1.ChatGroup
}

// maxRecent bounds committer.recent. Groups busy enough to benefit fit
// easily; the others fall back to the cache.
const maxRecent = 4096

func newCommitter(c client.Client, reader client.Reader, recorder events.EventRecorder, log logr.Logger, opts Options) *committer {
	cm := &committer{
		client:   c,
		reader:   reader,
		recorder: recorder,
		log:      log,
		opts:     opts,
		now:      time.Now,
		sem:      make(chan struct{}, opts.CommitConcurrency),
		ctx:      context.Background(),
		queues:   map[types.NamespacedName]*groupQueue{},
		recent:   map[types.NamespacedName]*imv1.ChatGroup{},
	}
	cm.idle = sync.NewCond(&cm.mu)
	return cm
}

// submit queues an event; the result arrives on req.done.
func (c *committer) submit(req *commitRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending >= c.opts.MaxPending {
		return errOverloaded
	}
	req.accepted = c.now()
	c.pending++
	queueDepth.Set(float64(c.pending))
	q, ok := c.queues[req.target.Key]
	if !ok {
		q = &groupQueue{last: c.recent[req.target.Key]}
		delete(c.recent, req.target.Key)
		c.queues[req.target.Key] = q
		go c.drain(req.target.Key, q)
	}
	q.items = append(q.items, req)
	return nil
}

// wait blocks until every queued event is stored or dropped, or until the
// timeout; it reports the events still pending.
func (c *committer) wait(timeout time.Duration) int {
	deadline := time.AfterFunc(timeout, func() {
		c.mu.Lock()
		c.idle.Broadcast()
		c.mu.Unlock()
	})
	defer deadline.Stop()
	end := time.Now().Add(timeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.pending > 0 && time.Now().Before(end) {
		c.idle.Wait()
	}
	return c.pending
}

func (c *committer) drain(key types.NamespacedName, q *groupQueue) {
	var batch []*commitRequest
	backoff := 50 * time.Millisecond
	for {
		c.mu.Lock()
		switch {
		case c.opts.OneWritePerEvent && len(batch) == 0 && len(q.items) > 0:
			batch, q.items = q.items[:1:1], q.items[1:]
		case !c.opts.OneWritePerEvent || len(batch) > 0:
			batch = append(batch, q.items...)
			q.items = nil
		}
		if len(batch) == 0 {
			delete(c.queues, key)
			c.remember(key, q.last)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		c.sem <- struct{}{}
		results, err := c.commit(q, batch)
		<-c.sem

		var perm permanentError
		switch {
		case err == nil:
			commitBatchSize.Observe(float64(len(batch)))
			for i, req := range batch {
				eventResults.WithLabelValues(string(results[i])).Inc()
				if results[i] == Duplicate {
					dedupeHits.WithLabelValues(string(req.ev.Provider)).Inc()
				}
				req.done <- commitResult{result: results[i]}
			}
		case errors.As(err, &perm):
			c.log.Error(err, "Cannot store events", "chatGroup", key, "events", len(batch))
			for _, req := range batch {
				req.done <- commitResult{err: err}
			}
		case c.ctx.Err() != nil || c.now().Sub(batch[0].accepted) > c.opts.RetryTimeout:
			reason := "retry_timeout"
			if c.ctx.Err() != nil {
				reason = "shutdown"
			}
			c.drop(key, batch, reason, err)
		default:
			c.log.V(1).Info("Retrying events after a failed commit", "chatGroup", key, "events", len(batch),
				"backoff", backoff, "error", err.Error())
			time.Sleep(backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		c.finish(len(batch))
		batch = nil
		backoff = 50 * time.Millisecond
	}
}

// remember keeps the last written object of an idle group; c.mu is held.
func (c *committer) remember(key types.NamespacedName, last *imv1.ChatGroup) {
	if last == nil {
		return
	}
	for k := range c.recent {
		if len(c.recent) < maxRecent {
			break
		}
		delete(c.recent, k) // map order is random: a cheap random eviction
	}
	c.recent[key] = last
}

func (c *committer) finish(n int) {
	c.mu.Lock()
	c.pending -= n
	queueDepth.Set(float64(c.pending))
	if c.pending == 0 {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
}

// drop gives up on accepted events: it counts them, logs them and reports
// them as a Warning Event on the receiver, so that no loss is silent.
func (c *committer) drop(key types.NamespacedName, batch []*commitRequest, reason string, err error) {
	droppedEvents.WithLabelValues(reason).Add(float64(len(batch)))
	c.log.Error(err, "Dropped accepted events", "chatGroup", key, "events", len(batch), "reason", reason)
	rcv := batch[0].target.Receiver
	obj := &imv1.ChatReceiver{ObjectMeta: metav1.ObjectMeta{Namespace: rcv.Namespace, Name: rcv.Name}}
	if c.recorder != nil {
		c.recorder.Eventf(obj, nil, corev1.EventTypeWarning, "EventsDropped", "Commit",
			"Dropped %d accepted events for ChatGroup %s (%s): %v", len(batch), key.Name, reason, err)
	}
	for _, req := range batch {
		req.done <- commitResult{err: err}
	}
}

const maxConflictRetries = 10

// commit applies a batch to the ChatGroup and writes its status once,
// re-reading and re-applying on conflicts.
func (c *committer) commit(q *groupQueue, batch []*commitRequest) ([]Result, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	batchEvents := make([]GroupEvent, len(batch))
	for i, req := range batch {
		batchEvents[i] = req.ev
	}
	target := batch[0].target

	cg := q.last
	fromAPI := false
	for range maxConflictRetries {
		if cg == nil {
			var err error
			if cg, err = c.getOrCreate(ctx, target, fromAPI); err != nil {
				return nil, err
			}
		}
		if cg.Spec != target.Spec {
			return nil, permanentError{fmt.Errorf("ChatGroup %s exists for another group (%s %q %q)",
				target.Key, cg.Spec.Provider, cg.Spec.AppID, cg.Spec.GroupID)}
		}
		base := cg.DeepCopy()
		results := Reduce(&cg.Status, batchEvents, c.opts.Limits)
		if equality.Semantic.DeepEqual(base.Status, cg.Status) {
			q.last = base
			return results, nil
		}
		err := c.client.Status().Patch(ctx, cg, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		switch {
		case err == nil:
			apiWrites.WithLabelValues("status", "ok").Inc()
			q.last = cg
			return results, nil
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			apiWrites.WithLabelValues("status", "conflict").Inc()
			commitConflicts.Inc()
			cg, q.last, fromAPI = nil, nil, true
		default:
			apiWrites.WithLabelValues("status", "error").Inc()
			q.last = nil
			return nil, fmt.Errorf("writing ChatGroup %s status: %w", target.Key, err)
		}
	}
	return nil, fmt.Errorf("writing ChatGroup %s status: still conflicting after %d attempts", target.Key, maxConflictRetries)
}

// getOrCreate reads the ChatGroup (from the cache unless fromAPI) and
// creates it when it does not exist.
func (c *committer) getOrCreate(ctx context.Context, target groupTarget, fromAPI bool) (*imv1.ChatGroup, error) {
	var reader client.Reader = c.client
	if fromAPI {
		reader = c.reader
	}
	cg := &imv1.ChatGroup{}
	err := reader.Get(ctx, target.Key, cg)
	if err == nil {
		return cg, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading ChatGroup %s: %w", target.Key, err)
	}
	cg = &imv1.ChatGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: target.Key.Namespace, Name: target.Key.Name, Labels: target.Labels},
		Spec:       target.Spec,
	}
	err = c.client.Create(ctx, cg)
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
		return nil, permanentError{fmt.Errorf("creating ChatGroup %s: %w", target.Key, err)}
	default:
		apiWrites.WithLabelValues("create", "error").Inc()
		return nil, fmt.Errorf("creating ChatGroup %s: %w", target.Key, err)
	}
}
