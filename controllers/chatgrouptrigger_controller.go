package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// ChatGroupTriggerReconciler reports whether a ChatGroupTrigger's spec is
// usable. Running triggers is the ChatGroup reconciler's job; it watches
// triggers itself, so a changed trigger wakes the groups it concerns.
type ChatGroupTriggerReconciler struct {
	client   client.Client
	recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatgrouptriggers,verbs=get;list;watch
// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatgrouptriggers/status,verbs=get;update;patch

// Reconcile validates one trigger and records the result in its Ready
// condition. An invalid trigger is Stalled until its spec changes. Its
// status is patched once, on the way out.
func (r *ChatGroupTriggerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	trig := &imv1.ChatGroupTrigger{}
	if err := r.client.Get(ctx, req.NamespacedName, trig); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := trig.DeepCopy()
	defer func() {
		retErr = kerrors.NewAggregate([]error{retErr, r.patchStatus(ctx, base, trig)})
	}()
	err := validateTrigger(&trig.Spec)
	setTriggerStatus(trig, err)
	if readyChanged(base.Status.Conditions, trig.Status.Conditions) && err != nil {
		r.recorder.Eventf(trig, nil, corev1.EventTypeWarning, imv1.InvalidSpecReason, reconcileAction, "Invalid spec: %v", err)
	}
	return ctrl.Result{}, nil
}

// patchStatus writes the trigger's status (triggerOwnedStatus).
func (r *ChatGroupTriggerReconciler) patchStatus(ctx context.Context, base, trig *imv1.ChatGroupTrigger) error {
	_, err := patchOwnedStatus[triggerOwnedStatus](ctx, r.client, trig, &base.Status, &trig.Status)
	return client.IgnoreNotFound(err)
}

// setTriggerStatus sets Ready (and Stalled for an invalid spec).
func setTriggerStatus(trig *imv1.ChatGroupTrigger, specErr error) {
	st := &trig.Status
	gen := trig.Generation
	st.ObservedGeneration = gen
	if specErr != nil {
		setInvalidSpec(&st.Conditions, gen, specErr)
		return
	}
	setCondition(&st.Conditions, gen, imv1.ReadyCondition, metav1.ConditionTrue, imv1.SucceededReason, "The trigger is valid")
	meta.RemoveStatusCondition(&st.Conditions, imv1.StalledCondition)
}

// SetupWithManager registers the reconciler. Only spec changes wake it.
func (r *ChatGroupTriggerReconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("chatgrouptrigger").
		For(&imv1.ChatGroupTrigger{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).
		Complete(r)
}
