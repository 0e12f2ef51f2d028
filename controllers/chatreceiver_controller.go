package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// ChatReceiverReconciler publishes each ChatReceiver's webhook paths, which
// are derived from the tokens in its Secret, and reports whether the
// receiver can accept callbacks.
type ChatReceiverReconciler struct {
	client client.Client
	// apiReader reads Secrets from the API server: the operator does not
	// watch Secrets (it may not list them), see internal/secrets.
	apiReader client.Reader
	recorder  events.EventRecorder
	// secretRecheck is how often a receiver's Secret is read again, to
	// publish a rotated token's path.
	secretRecheck time.Duration
}

// receiverObservation is what a reconcile learned about a receiver.
type receiverObservation struct {
	// specErr is a spec problem the schema cannot catch.
	specErr error
	// secretMissing is true when the Secret does not exist.
	secretMissing bool
	// token and previousToken are the Secret's tokens.
	token, previousToken string
	// halfBasicAuth is true when the Secret has a username or a password
	// but not both.
	halfBasicAuth bool
}

// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatreceivers,verbs=get;list;watch
// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatreceivers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// Reconcile brings one ChatReceiver's status up to date.
func (r *ChatReceiverReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	rcv := &imv1.ChatReceiver{}
	if err := r.client.Get(ctx, req.NamespacedName, rcv); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := rcv.DeepCopy()
	defer func() {
		retErr = kerrors.NewAggregate([]error{retErr, r.patchStatus(ctx, base, rcv)})
	}()

	obs := receiverObservation{specErr: validateReceiver(&rcv.Spec)}
	if obs.specErr == nil {
		var err error
		if obs, err = r.readTokens(ctx, rcv); err != nil {
			return ctrl.Result{}, err
		}
	}
	setReceiverStatus(rcv, obs)
	r.reportTransition(base, rcv)
	if obs.specErr != nil {
		return ctrl.Result{}, nil // waits for a spec change
	}
	// Secrets are not watched: read it again later to see a rotation, a
	// new token or a Secret that appears.
	return ctrl.Result{RequeueAfter: r.secretRecheck}, nil
}

// readTokens reads the tokens from the receiver's Secret, directly from
// the API server.
func (r *ChatReceiverReconciler) readTokens(ctx context.Context, rcv *imv1.ChatReceiver) (receiverObservation, error) {
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: rcv.Namespace, Name: rcv.Spec.SecretRef.Name}
	if err := r.apiReader.Get(ctx, key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return receiverObservation{secretMissing: true}, nil
		}
		return receiverObservation{}, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	}
	return receiverObservation{
		token:         string(secret.Data[imv1.TokenKey]),
		previousToken: string(secret.Data[imv1.PreviousTokenKey]),
		halfBasicAuth: (len(secret.Data[imv1.UsernameKey]) == 0) != (len(secret.Data[imv1.PasswordKey]) == 0),
	}, nil
}

// reportTransition sends an Event when Ready changes. The note never holds
// the webhook path: for OpenIM the path is the credential, and Events are
// often readable more widely than the receiver.
func (r *ChatReceiverReconciler) reportTransition(base, rcv *imv1.ChatReceiver) {
	if !readyChanged(base.Status.Conditions, rcv.Status.Conditions) {
		return
	}
	ready := meta.FindStatusCondition(rcv.Status.Conditions, imv1.ReadyCondition)
	if ready.Status == metav1.ConditionTrue {
		r.recorder.Eventf(rcv, nil, corev1.EventTypeNormal, ready.Reason, reconcileAction, "Receiving callbacks")
		return
	}
	r.recorder.Eventf(rcv, nil, corev1.EventTypeWarning, ready.Reason, reconcileAction, "%s", ready.Message)
}

// patchStatus writes the reconciler's status fields, receiverOwnedStatus:
// lastEventTime, written by the callback server, is never part of it.
func (r *ChatReceiverReconciler) patchStatus(ctx context.Context, base, rcv *imv1.ChatReceiver) error {
	_, err := patchOwnedStatus[receiverOwnedStatus](ctx, r.client, rcv, &base.Status, &rcv.Status)
	return client.IgnoreNotFound(err)
}

// SetupWithManager registers the reconciler. Status-only updates
// (lastEventTime) do not wake it. Secrets are not watched: the reconciler
// reads each receiver's Secret again every secretRecheck.
func (r *ChatReceiverReconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("chatreceiver").
		For(&imv1.ChatReceiver{}, builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, lastSyncChangedPredicate()))).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).
		Complete(r)
}
