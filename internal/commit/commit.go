// Package commit stores GroupEvents in ChatGroup status: one queue per
// ChatGroup, the events queued for a group reduced into one
// optimistic-concurrency status write per batch, groups written in
// parallel up to a bound, and failed batches retried with backoff until a
// timeout. The callback server submits events and replies once they are
// stored.
package commit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
)

// ErrOverloaded means too many events are already waiting.
var ErrOverloaded = errors.New("too many events waiting to be stored")

// PermanentError is a commit failure that retrying cannot fix.
type PermanentError struct{ Err error }

func (e PermanentError) Error() string { return e.Err.Error() }
func (e PermanentError) Unwrap() error { return e.Err }

// Options configure a Committer.
type Options struct {
	// Concurrency bounds the groups committed in parallel.
	Concurrency int
	// MaxPending bounds the events waiting to be committed across all
	// groups; beyond it Submit fails with ErrOverloaded.
	MaxPending int
	// RetryTimeout is how long a failing event is retried before it is
	// dropped (counted and reported as a Kubernetes Event).
	RetryTimeout time.Duration
	// DrainTimeout is how long Start waits, once its context ends, for the
	// queued events to be stored before it drops them.
	DrainTimeout time.Duration
	// OneWritePerEvent disables merging: every event is its own status
	// write. It exists as the baseline for benchmarks.
	OneWritePerEvent bool
	// Limits bound each ChatGroup's status. Limits.MaxMembers bounds the
	// members listed, inline or in slices.
	Limits groupstate.Limits
	// JournalTail is how many journal entries are kept once every
	// trigger's cursor and the announcement have passed them.
	JournalTail int
	// SliceThreshold is the member count above which a ChatGroup keeps its
	// members in ChatGroupMemberSlices; a sliced group goes back inline
	// below half of it.
	SliceThreshold int
	// SliceFill is the average number of members per slice when a
	// generation of slices is written; slices are rewritten when they
	// average more than twice that, or less than a quarter.
	SliceFill int
}

// Target says which ChatGroup an event goes to and how to create it.
type Target struct {
	Key      types.NamespacedName
	Spec     imv1.ChatGroupSpec
	Labels   map[string]string
	Receiver types.NamespacedName
}

// Result is the outcome of storing one event.
type Result struct {
	Result groupstate.ApplyResult
	Err    error
}

type request struct {
	ev       groupstate.GroupEvent
	target   Target
	accepted time.Time
	done     chan Result // buffered: the waiter may have given up
}

// groupQueue holds the events waiting for one ChatGroup, and the group as
// last written, which is the base of the next batch while the queue lives.
type groupQueue struct {
	items []*request
	groupBase
}

// groupBase is a ChatGroup as last written: the object, and for a sliced
// group its full member list and the version of the slices it reflects.
type groupBase struct {
	last      *imv1.ChatGroup
	members   []imv1.GroupMember
	membersAt memberVersion
}

// Committer stores events in ChatGroup status. Submit queues an event; a
// goroutine per busy group commits its queue.
type Committer struct {
	client   client.Client
	reader   client.Reader
	recorder events.EventRecorder
	log      logr.Logger
	opts     Options
	now      func() time.Time

	sem chan struct{}
	// ctx bounds every commit; Start cancels it once the queue is drained
	// or the drain timed out.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	queues  map[types.NamespacedName]*groupQueue
	pending int
	idle    *sync.Cond
	// recent keeps the objects last written for groups whose queue ran
	// empty, so the next event for the group does not start from a cache
	// that has not seen our own write yet (which costs a failed create or
	// a conflicting patch). Bounded by maxRecent.
	recent map[types.NamespacedName]groupBase
}

// maxRecent bounds Committer.recent. Groups busy enough to benefit fit
// easily; the others fall back to the cache.
const maxRecent = 4096

// New returns a committer that reads ChatGroups through c (normally the
// cache), re-reads them through reader (the API server) after a conflict,
// and reports dropped events through recorder (which may be nil).
func New(c client.Client, reader client.Reader, recorder events.EventRecorder, log logr.Logger, opts Options) *Committer {
	ctx, cancel := context.WithCancel(context.Background())
	cm := &Committer{
		client:   c,
		reader:   reader,
		recorder: recorder,
		log:      log,
		opts:     opts,
		now:      time.Now,
		sem:      make(chan struct{}, opts.Concurrency),
		ctx:      ctx,
		cancel:   cancel,
		queues:   map[types.NamespacedName]*groupQueue{},
		recent:   map[types.NamespacedName]groupBase{},
	}
	cm.idle = sync.NewCond(&cm.mu)
	return cm
}

// Start commits until ctx ends, then gives queued events DrainTimeout to be
// stored, and drops (and reports) those still queued. On start it brings
// the member slices of every sliced group up to date with its status, for
// a process that stopped between the two writes. The committer works
// before Start too; Start only bounds its life. Its owner cancels ctx once
// no more events will be submitted.
func (c *Committer) Start(ctx context.Context) error {
	go c.repairAll(ctx)
	<-ctx.Done()
	if left := c.wait(c.opts.DrainTimeout); left > 0 {
		c.log.Info("Stopping with events still queued; dropping and reporting them", "events", left)
	}
	c.cancel()
	// The drains see the cancelled context and drop what is left: wait for
	// them, so every drop is counted and reported before Start returns
	// and the process may exit.
	if left := c.wait(c.opts.DrainTimeout); left > 0 {
		c.log.Info("Events still unsettled at exit", "events", left)
	}
	return nil
}

// Submit queues an event for its ChatGroup. The result arrives on the
// channel once the event is stored, or dropped.
func (c *Committer) Submit(target Target, ev groupstate.GroupEvent) (<-chan Result, error) {
	req := &request{ev: ev, target: target, done: make(chan Result, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending >= c.opts.MaxPending {
		return nil, ErrOverloaded
	}
	req.accepted = c.now()
	c.pending++
	queueDepth.Set(float64(c.pending))
	q, ok := c.queues[target.Key]
	if !ok {
		q = &groupQueue{groupBase: c.recent[target.Key]}
		delete(c.recent, target.Key)
		c.queues[target.Key] = q
		go c.drain(target.Key, q)
	}
	q.items = append(q.items, req)
	return req.done, nil
}

// wait blocks until every queued event is stored or dropped, or until the
// timeout; it reports the events still pending.
func (c *Committer) wait(timeout time.Duration) int {
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

// drain commits a group's queue, batch by batch, until it is empty; then
// the queue is removed and its last object kept for the next one.
func (c *Committer) drain(key types.NamespacedName, q *groupQueue) {
	for {
		batch := c.nextBatch(key, q)
		if batch == nil {
			return
		}
		c.finish(c.commitWithRetries(key, q, batch))
	}
}

// nextBatch takes the queued events (one at a time with OneWritePerEvent),
// or removes the queue and returns nil when it is empty.
func (c *Committer) nextBatch(key types.NamespacedName, q *groupQueue) []*request {
	c.mu.Lock()
	defer c.mu.Unlock()
	var batch []*request
	switch {
	case len(q.items) == 0:
		delete(c.queues, key)
		c.keepRecent(key, q.groupBase)
		return nil
	case c.opts.OneWritePerEvent:
		batch, q.items = q.items[:1:1], q.items[1:]
	default:
		batch, q.items = q.items, nil
	}
	return batch
}

// commitWithRetries commits a batch, retrying with backoff until it is
// stored, fails permanently, or times out; every request gets its result.
// A failed batch of several events is retried event by event. It returns
// the number of events settled.
func (c *Committer) commitWithRetries(key types.NamespacedName, q *groupQueue, batch []*request) int {
	backoff := 50 * time.Millisecond
	for {
		c.sem <- struct{}{}
		results, err := c.commit(q, batch)
		<-c.sem

		var perm PermanentError
		switch {
		case err == nil:
			c.deliver(batch, results)
			return len(batch)
		case len(batch) > 1:
			// One bad event must not take the others down: retry the
			// batch event by event.
			c.log.V(1).Info("Retrying a failed batch event by event", "chatGroup", key, "events", len(batch), "error", err.Error())
			n := 0
			for _, req := range batch {
				n += c.commitWithRetries(key, q, []*request{req})
			}
			return n
		case errors.As(err, &perm):
			c.drop(key, batch, "permanent", err)
			return len(batch)
		case c.ctx.Err() != nil:
			c.drop(key, batch, "shutdown", err)
			return len(batch)
		case c.now().Sub(batch[0].accepted) > c.opts.RetryTimeout:
			c.drop(key, batch, "retry_timeout", err)
			return len(batch)
		}
		c.log.V(1).Info("Retrying events after a failed commit", "chatGroup", key, "events", len(batch),
			"backoff", backoff, "error", err.Error())
		select {
		case <-time.After(backoff):
		case <-c.ctx.Done():
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// deliver reports a stored batch's results.
func (c *Committer) deliver(batch []*request, results []groupstate.ApplyResult) {
	commitBatchSize.Observe(float64(len(batch)))
	for i, req := range batch {
		eventResults.WithLabelValues(string(results[i])).Inc()
		if results[i] == groupstate.Duplicate {
			dedupeHits.WithLabelValues(string(req.ev.Provider)).Inc()
		}
		req.done <- Result{Result: results[i]}
	}
}

func fail(batch []*request, err error) {
	for _, req := range batch {
		req.done <- Result{Err: err}
	}
}

// keepRecent keeps the last written object of an idle group; c.mu is held.
func (c *Committer) keepRecent(key types.NamespacedName, last groupBase) {
	if last.last == nil {
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

func (c *Committer) finish(n int) {
	c.mu.Lock()
	c.pending -= n
	queueDepth.Set(float64(c.pending))
	if c.pending == 0 {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
}
