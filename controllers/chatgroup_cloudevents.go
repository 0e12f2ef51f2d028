package controllers

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/cloudevent"
)

// The token Secret of a trigger is read with a plain Get through the API
// reader: no Secret informer is started for CloudEvents.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

const (
	// TriggerExtension is the CloudEvent extension attribute that names the
	// trigger, so that a sink shared by several triggers can tell their
	// events apart (the id is the same for every trigger).
	TriggerExtension = "chatgrouptrigger"
	// TokenKey is the key of the signing token in a cloudEvent secretRef.
	TokenKey = "token"

	cloudEventFailedReason = "CloudEventFailed"
	deliverAction          = "DeliverCloudEvent"

	// roundTimeout bounds one round of sending (the Sender's attempts and
	// backoffs for one entry), whatever the Sender's options.
	roundTimeout = 2 * time.Minute
	// secretRetry is how long a trigger whose token Secret is missing waits
	// before looking again: Secrets are not watched.
	secretRetry = 30 * time.Second
	// minRoundWait and maxRoundWait bound the wait between two rounds of
	// sending the same entry, which doubles after each round.
	minRoundWait = time.Second
	maxRoundWait = 5 * time.Minute
)

var cloudEventsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "chatgroup_trigger_cloudevents_failed_total",
	Help: "Journal entries whose CloudEvent a ChatGroupTrigger gave up on (the sink refused it permanently).",
}, []string{"namespace", "trigger"})

func init() {
	metrics.Registry.MustRegister(cloudEventsFailed)
}

// deliveryKey names one trigger's deliveries to one group.
type deliveryKey struct {
	group   types.NamespacedName
	trigger string
}

// delivery is the state of one trigger's delivery of one journal entry.
type delivery struct {
	uid types.UID
	seq int64
	// done is set when the round of sending ended; result is then valid.
	done   bool
	result cloudevent.Result
	// retryAt, for a Retrying result already recorded, is when the next
	// round may start.
	retryAt time.Time
	// rounds counts the rounds of sending that ended Retrying.
	rounds int
}

// deliveries runs CloudEvent deliveries in the background, so that a slow
// or dead sink never holds a reconcile worker: a reconcile starts a round
// of sending and returns; when the round ends, the group is reconciled
// again and records the result. Each (group, trigger) has at most one
// entry in flight, so entries are delivered in journal order.
type deliveries struct {
	sender *cloudevent.Sender
	// defaultSink is the operator-wide sink (K_SINK), or nil.
	defaultSink *cloudevent.Target
	// base ends when the manager stops; every round runs under it.
	base context.Context
	// wake receives the groups whose round ended.
	wake chan event.GenericEvent

	mu      sync.Mutex
	pending map[deliveryKey]*delivery
}

func newDeliveries(base context.Context, sender *cloudevent.Sender, defaultSink *cloudevent.Target) *deliveries {
	return &deliveries{
		sender:      sender,
		defaultSink: defaultSink,
		base:        base,
		wake:        make(chan event.GenericEvent, 64),
		pending:     map[deliveryKey]*delivery{},
	}
}

// forget drops the state of a group that is gone.
func (d *deliveries) forget(group types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, p := range d.pending {
		if k.group == group && p.done {
			delete(d.pending, k)
		}
	}
}

// take returns the state for an entry. A state left for another entry (the
// cursor was reset, or the group re-created) is dropped once its round has
// ended; inFlight reports a round still running, for this entry or another.
func (d *deliveries) take(k deliveryKey, uid types.UID, seq int64) (p *delivery, inFlight bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p = d.pending[k]
	switch {
	case p == nil:
		return nil, false
	case !p.done:
		return nil, true
	case p.uid != uid || p.seq != seq:
		delete(d.pending, k)
		return nil, false
	}
	return p, false
}

// start begins a round of sending in the background.
func (d *deliveries) start(k deliveryKey, t *cloudevent.Target, e *cloudevent.Entry) {
	d.mu.Lock()
	next := &delivery{uid: e.UID, seq: e.Seq}
	if p := d.pending[k]; p != nil && p.uid == e.UID && p.seq == e.Seq {
		next.rounds = p.rounds
	}
	d.pending[k] = next
	d.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(d.base, roundTimeout)
		res := d.sender.Send(ctx, t, e)
		cancel()
		d.mu.Lock()
		if p := d.pending[k]; p != nil && p.uid == e.UID && p.seq == e.Seq {
			p.done, p.result = true, res
		}
		d.mu.Unlock()
		obj := &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Namespace: k.group.Namespace, Name: k.group.Name}}
		select {
		case d.wake <- event.GenericEvent{Object: obj}:
		case <-d.base.Done():
		}
	}()
}

// runActions runs a trigger's actions for one journal entry: its Job, then
// its CloudEvent. done reports that the trigger is finished with the entry
// and its cursor may move past it.
func (r *ChatGroupReconciler) runActions(ctx context.Context, cg *imv1.ChatGroup, trig *imv1.ChatGroupTrigger,
	entry *imv1.JournalEntry, ts *imv1.TriggerStatus, obs *groupObservation) (done bool, err error) {
	// The Job goes first, so that a slow sink does not hold it up. While
	// the CloudEvent is pending, the Job already started is not created
	// again.
	if trig.Spec.JobTemplate != nil && ts.LastJob != jobName(cg, trig.Name, entry.Seq) {
		started, err := r.startJob(ctx, cg, trig, entry, ts, obs)
		if err != nil || !started {
			return false, err
		}
	}
	if trig.Spec.CloudEvent == nil {
		return true, nil
	}
	return r.deliverCloudEvent(ctx, cg, trig, entry, ts, obs)
}

// deliverCloudEvent sends a journal entry's CloudEvent. It never waits for
// the sink: it starts a round of sending, or records the result of the
// round that ended. The entry is done once it was delivered (2xx) or
// failed permanently; a retryable failure is sent again after a backoff.
func (r *ChatGroupReconciler) deliverCloudEvent(ctx context.Context, cg *imv1.ChatGroup, trig *imv1.ChatGroupTrigger,
	entry *imv1.JournalEntry, ts *imv1.TriggerStatus, obs *groupObservation) (bool, error) {
	key := deliveryKey{group: types.NamespacedName{Namespace: cg.Namespace, Name: cg.Name}, trigger: trig.Name}
	p, inFlight := r.deliveries.take(key, cg.UID, entry.Seq)
	switch {
	case inFlight:
		return false, nil // the round's end wakes the group
	case p != nil && p.retryAt.IsZero():
		return r.recordDelivery(ctx, cg, trig, ts, key, p, obs), nil
	case p != nil:
		if wait := p.retryAt.Sub(r.now()); wait > 0 {
			obs.requeue(wait)
			return false, nil
		}
	}
	target, problem, err := r.cloudEventTarget(ctx, trig)
	if err != nil || problem != "" {
		if problem != "" {
			obs.problems = append(obs.problems, fmt.Sprintf("ChatGroupTrigger %s: %s", trig.Name, problem))
			obs.requeue(secretRetry)
		}
		return false, err
	}
	data, err := eventJSON(cg, trig.Name, entry)
	if err != nil {
		return false, err
	}
	r.deliveries.start(key, target, &cloudevent.Entry{
		Namespace: cg.Namespace, Name: cg.Name, UID: cg.UID, GroupID: cg.Spec.GroupID,
		Kind: entry.Kind, Seq: entry.Seq, Time: entry.Time.Time, Data: data,
	})
	return false, nil
}

// recordDelivery writes the result of a round into the trigger's status,
// and reports whether the entry is done.
func (r *ChatGroupReconciler) recordDelivery(ctx context.Context, cg *imv1.ChatGroup, trig *imv1.ChatGroupTrigger,
	ts *imv1.TriggerStatus, key deliveryKey, p *delivery, obs *groupObservation) bool {
	res := p.result
	ts.LastDelivery = &imv1.CloudEventDelivery{
		Seq: p.seq, ID: res.ID, Outcome: imv1.DeliveryOutcome(res.Outcome), Reason: res.Reason,
		Code: int32(res.StatusCode), Attempts: int32(res.Attempts),
		Message: truncateNote(res.Message, 1024), Time: metav1.NewTime(r.now()),
	}
	log := ctrl.LoggerFrom(ctx).WithValues("trigger", trig.Name, "seq", p.seq, "id", res.ID)
	switch res.Outcome {
	case cloudevent.Delivered:
		r.deliveries.drop(key)
		log.V(1).Info("Delivered CloudEvent", "code", res.StatusCode)
		return true
	case cloudevent.Failed:
		r.deliveries.drop(key)
		ts.DeliveriesFailed++
		cloudEventsFailed.WithLabelValues(cg.Namespace, trig.Name).Inc()
		log.Info("Gave up on a CloudEvent", "reason", res.Reason, "code", res.StatusCode)
		r.recorder.Eventf(cg, trig, corev1.EventTypeWarning, cloudEventFailedReason, deliverAction,
			"Trigger %s gave up on the CloudEvent for seq %d (id %s): %s", trig.Name, p.seq, res.ID, res.Message)
		return true
	default:
		wait := roundWait(res.RetryAfter, p.rounds)
		p.rounds++
		p.retryAt = r.now().Add(wait)
		log.Info("CloudEvent not delivered yet", "reason", res.Reason, "code", res.StatusCode, "retryAfter", wait)
		obs.requeue(wait)
		return false
	}
}

// roundWait is the wait before the next round of sending: the sender's
// backoff, at least minRoundWait, doubled for each earlier round, at most
// maxRoundWait.
func roundWait(retryAfter time.Duration, rounds int) time.Duration {
	wait := max(retryAfter, minRoundWait)
	for range min(rounds, 16) {
		wait *= 2
		if wait >= maxRoundWait {
			return maxRoundWait
		}
	}
	return min(wait, maxRoundWait)
}

// drop removes the state of a finished entry.
func (d *deliveries) drop(k deliveryKey) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.pending, k)
}

// cloudEventTarget resolves where a trigger's events go: its url, or the
// operator's default sink with K_CE_OVERRIDES, signed with the token of its
// secretRef. A problem is a configuration error the user must fix; err is
// transient.
func (r *ChatGroupReconciler) cloudEventTarget(ctx context.Context, trig *imv1.ChatGroupTrigger) (*cloudevent.Target, string, error) {
	spec := trig.Spec.CloudEvent
	t := &cloudevent.Target{URL: spec.URL, Extensions: map[string]string{}}
	if t.URL == "" {
		if r.deliveries.defaultSink == nil {
			return nil, "cloudEvent has no url and the operator has no default sink (K_SINK)", nil
		}
		t.URL = r.deliveries.defaultSink.URL
		maps.Copy(t.Extensions, r.deliveries.defaultSink.Extensions)
	}
	t.Extensions[TriggerExtension] = trig.Name
	if spec.SecretRef == nil {
		return t, "", nil
	}
	secret := &corev1.Secret{}
	err := r.apiReader.Get(ctx, types.NamespacedName{Namespace: trig.Namespace, Name: spec.SecretRef.Name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Sprintf("cloudEvent secretRef: Secret %s not found", spec.SecretRef.Name), nil
	case err != nil:
		return nil, "", fmt.Errorf("reading Secret %s: %w", spec.SecretRef.Name, err)
	case len(secret.Data[TokenKey]) == 0:
		return nil, fmt.Sprintf("cloudEvent secretRef: Secret %s has no key %q", spec.SecretRef.Name, TokenKey), nil
	}
	t.Token = secret.Data[TokenKey]
	return t, "", nil
}
