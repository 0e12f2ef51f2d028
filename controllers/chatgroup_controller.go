package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// triggerStatusIndex indexes ChatGroups by the triggers in status.triggers,
// so that a changed or deleted trigger also wakes the groups it no longer
// matches.
const triggerStatusIndex = ".status.triggers.name"

// cacheLagRequeue is how long a reconcile waits for the cache to catch up
// with the reconciler's own last status write.
const cacheLagRequeue = 200 * time.Millisecond

// ChatGroupReconciler publishes a ChatGroup's journal as Kubernetes Events,
// runs the matching ChatGroupTriggers' Jobs and CloudEvents, keeps the group's conditions and
// deletes disbanded groups after their TTL. It writes only the status fields
// it owns (groupOwnedStatus); the callback server owns the rest.
type ChatGroupReconciler struct {
	client    client.Client
	apiReader client.Reader
	scheme    *runtime.Scheme
	recorder  events.EventRecorder
	writes    *statusWrites
	now       func() time.Time
	// deliveries sends the triggers' CloudEvents in the background.
	deliveries *deliveries
	// jobClients creates Jobs as the trigger's ServiceAccount.
	jobClients *impersonatingClients
}

// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatgroups,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatgroups/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatgroups/finalizers,verbs=update
// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatgrouptriggers,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Reconcile brings one ChatGroup up to date. Its status is patched once, on
// the way out.
func (r *ChatGroupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	cg := &imv1.ChatGroup{}
	if err := r.client.Get(ctx, req.NamespacedName, cg); err != nil {
		if apierrors.IsNotFound(err) {
			r.writes.forget(req.NamespacedName)
			r.deliveries.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cg.DeletionTimestamp.IsZero() {
		// Nothing to clean up: the Jobs go with the group through their
		// owner references.
		return ctrl.Result{}, nil
	}
	if r.writes.stale(cg) {
		ctrl.LoggerFrom(ctx).V(1).Info("Waiting for the cache to catch up with the last status write")
		return ctrl.Result{RequeueAfter: cacheLagRequeue}, nil
	}

	base := cg.DeepCopy()
	defer func() {
		r.reportInvalidSpec(base, cg)
		retErr = kerrors.NewAggregate([]error{retErr, r.patchStatus(ctx, base, cg)})
	}()
	return r.reconcileGroup(ctx, cg)
}

// reconcileGroup does the work; the caller patches the status.
func (r *ChatGroupReconciler) reconcileGroup(ctx context.Context, cg *imv1.ChatGroup) (ctrl.Result, error) {
	matched, err := r.matchTriggers(ctx, cg)
	if err != nil {
		setGroupConditions(cg, groupObservation{failed: true})
		return ctrl.Result{}, err
	}
	obs := groupObservation{problems: matched.problems}

	r.announce(cg)

	syncTriggerStatuses(cg, matched)
	var errs []error
	for _, trig := range matched.run {
		if err := r.runTrigger(ctx, cg, trig, &obs); err != nil {
			errs = append(errs, err)
		}
	}
	if cg.Status.Disbanded {
		cleanup, err := r.observeCleanup(ctx, cg, matched.run)
		if err != nil {
			errs = append(errs, err)
		}
		obs.cleanup = cleanup
	}

	obs.failed = len(errs) > 0
	setGroupConditions(cg, obs)
	if obs.failed {
		return ctrl.Result{}, kerrors.NewAggregate(errs)
	}
	res, err := r.expire(ctx, cg, obs.cleanup)
	if obs.requeueAfter > 0 && (res.RequeueAfter <= 0 || obs.requeueAfter < res.RequeueAfter) {
		res.RequeueAfter = obs.requeueAfter
	}
	if len(obs.forbidden) > 0 && (res.RequeueAfter == 0 || res.RequeueAfter > forbiddenRetry) {
		// Nothing wakes the group when the namespace's RBAC changes.
		res.RequeueAfter = forbiddenRetry
	}
	return res, err
}

// forbiddenRetry is how soon a Job that a trigger's ServiceAccount was not
// allowed to create is tried again.
const forbiddenRetry = 30 * time.Second

// reportInvalidSpec sends one Warning when the group turns not Ready
// because of a spec problem or a Job its trigger's ServiceAccount may not
// create. Failed Jobs have their own Events.
func (r *ChatGroupReconciler) reportInvalidSpec(base, cg *imv1.ChatGroup) {
	ready := meta.FindStatusCondition(cg.Status.Conditions, imv1.ReadyCondition)
	if ready == nil || !readyChanged(base.Status.Conditions, cg.Status.Conditions) {
		return
	}
	if ready.Reason == imv1.InvalidSpecReason || ready.Reason == imv1.JobForbiddenReason {
		r.recorder.Eventf(cg, nil, corev1.EventTypeWarning, ready.Reason, reconcileAction, "%s", truncateNote(ready.Message, maxNoteBytes))
	}
}

// expire deletes a disbanded group once its cleanup succeeded and the
// longest ttlAfterDisband of its cleanup triggers has passed, and otherwise
// asks to be woken when it will have.
func (r *ChatGroupReconciler) expire(ctx context.Context, cg *imv1.ChatGroup, cleanup []cleanupJob) (ctrl.Result, error) {
	deadline, ok := ttlDeadline(cg, cleanup)
	if !ok {
		return ctrl.Result{}, nil
	}
	if wait := deadline.Sub(r.now()); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	ctrl.LoggerFrom(ctx).Info("Deleting disbanded ChatGroup after its TTL", "deadline", deadline)
	if err := r.leaveFence(ctx, cg); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	// The preconditions make sure the group did not change since it was
	// read: a new event (say, a new incarnation) must be looked at first.
	err := r.client.Delete(ctx, cg, client.Preconditions{UID: &cg.UID, ResourceVersion: &cg.ResourceVersion})
	switch {
	case err == nil:
		r.recorder.Eventf(cg, nil, corev1.EventTypeNormal, ttlExpiredReason, deleteAction,
			"Deleted the disbanded group: its cleanup succeeded and ttlAfterDisband has passed")
		return ctrl.Result{}, nil
	case apierrors.IsNotFound(err):
		return ctrl.Result{}, nil
	case apierrors.IsConflict(err):
		return ctrl.Result{RequeueAfter: time.Second}, nil
	default:
		return ctrl.Result{}, fmt.Errorf("deleting expired ChatGroup: %w", err)
	}
}

// patchStatus writes the reconciler's status fields, groupOwnedStatus, and
// only those (see patchOwnedStatus).
func (r *ChatGroupReconciler) patchStatus(ctx context.Context, base, cg *imv1.ChatGroup) error {
	patched, err := patchOwnedStatus[groupOwnedStatus](ctx, r.client, cg, &base.Status, &cg.Status)
	if apierrors.IsNotFound(err) {
		return nil // deleted, for example by expire
	}
	if err != nil || patched == nil {
		return err
	}
	r.writes.record(patched)
	return nil
}

// SetupWithManager registers the reconciler and its watches.
func (r *ChatGroupReconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &imv1.ChatGroup{}, triggerStatusIndex,
		func(obj client.Object) []string {
			var names []string
			for _, ts := range obj.(*imv1.ChatGroup).Status.Triggers {
				names = append(names, ts.Name)
			}
			return names
		})
	if err != nil {
		return fmt.Errorf("indexing ChatGroups by trigger: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("chatgroup").
		For(&imv1.ChatGroup{}, builder.WithPredicates(groupChangedPredicate())).
		Owns(&batchv1.Job{}, builder.WithPredicates(jobFinishedPredicate())).
		Watches(&imv1.ChatGroupTrigger{}, handler.EnqueueRequestsFromMapFunc(r.groupsForTrigger),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(r.deliveries.wake, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).
		Complete(r)
}

// groupChangedPredicate wakes the reconciler on every change except the
// reconciler's own status writes, which would otherwise wake it in a loop.
// Every write by the callback server (members, journal, disband state ...)
// and every label change gets through.
func groupChangedPredicate() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldCG, okOld := e.ObjectOld.(*imv1.ChatGroup)
			newCG, okNew := e.ObjectNew.(*imv1.ChatGroup)
			return !okOld || !okNew || groupChanged(oldCG, newCG)
		},
	}
}

// groupChanged compares two versions of a group, ignoring resourceVersion,
// managedFields and the reconciler's status fields.
func groupChanged(oldCG, newCG *imv1.ChatGroup) bool {
	if oldCG.Generation != newCG.Generation ||
		!oldCG.DeletionTimestamp.Equal(newCG.DeletionTimestamp) ||
		!equality.Semantic.DeepEqual(oldCG.Labels, newCG.Labels) ||
		!equality.Semantic.DeepEqual(oldCG.Annotations, newCG.Annotations) {
		return true
	}
	return !equality.Semantic.DeepEqual(withoutOwned[groupOwnedStatus](oldCG.Status), withoutOwned[groupOwnedStatus](newCG.Status))
}

// jobFinishedPredicate passes Job updates only when the Job's outcome
// changes, and deletions. Creations come from this reconciler itself.
func jobFinishedPredicate() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldJob, okOld := e.ObjectOld.(*batchv1.Job)
			newJob, okNew := e.ObjectNew.(*batchv1.Job)
			return !okOld || !okNew || jobOutcome(oldJob) != jobOutcome(newJob)
		},
	}
}

// groupsForTrigger maps a trigger to the groups it selects plus the groups
// that still track it, which may no longer match.
func (r *ChatGroupReconciler) groupsForTrigger(ctx context.Context, obj client.Object) []reconcile.Request {
	ns := client.InNamespace(obj.GetNamespace())
	lists := []client.ListOption{client.MatchingFields{triggerStatusIndex: obj.GetName()}}
	if trig, ok := obj.(*imv1.ChatGroupTrigger); ok {
		if sel, err := metav1.LabelSelectorAsSelector(&trig.Spec.Selector); err == nil {
			lists = append(lists, client.MatchingLabelsSelector{Selector: sel})
		}
	}
	seen := map[types.NamespacedName]bool{}
	var reqs []reconcile.Request
	for _, match := range lists {
		var groups imv1.ChatGroupList
		// Only names are read, so the cached objects need not be copied.
		if err := r.client.List(ctx, &groups, ns, match, client.UnsafeDisableDeepCopy); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Unable to list ChatGroups for a trigger", "trigger", obj.GetName())
			continue
		}
		for i := range groups.Items {
			key := client.ObjectKeyFromObject(&groups.Items[i])
			if !seen[key] {
				seen[key] = true
				reqs = append(reqs, reconcile.Request{NamespacedName: key})
			}
		}
	}
	return reqs
}
