package controllers

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/clientaddr"
)

// validateReceiver checks what the schema cannot: allowedCIDRs parse, with
// the parser the callback server matches them with.
func validateReceiver(spec *imv1.ChatReceiverSpec) error {
	if _, err := clientaddr.ParseCIDRs(spec.AllowedCIDRs); err != nil {
		return fmt.Errorf("allowedCIDRs: %w", err)
	}
	return nil
}

// setReceiverStatus derives the receiver's paths and conditions. Without
// a usable token the paths are cleared, so that no path keeps pointing at a
// receiver that cannot authenticate callbacks. lastEventTime belongs to the
// callback server and is left alone.
func setReceiverStatus(rcv *imv1.ChatReceiver, obs receiverObservation) {
	st := &rcv.Status
	gen := rcv.Generation
	st.ObservedGeneration = gen
	st.WebhookPath, st.PreviousWebhookPath = "", ""
	setReceiverSynced(rcv)

	switch {
	case obs.specErr != nil:
		setInvalidSpec(&st.Conditions, gen, obs.specErr)
		return
	case obs.secretMissing:
		setCondition(&st.Conditions, gen, imv1.ReadyCondition, metav1.ConditionFalse, imv1.SecretNotFoundReason,
			fmt.Sprintf("Secret %s/%s not found", rcv.Namespace, rcv.Spec.SecretRef.Name))
	case obs.token == "":
		setCondition(&st.Conditions, gen, imv1.ReadyCondition, metav1.ConditionFalse, imv1.TokenNotFoundReason,
			fmt.Sprintf("Secret %s/%s has no %q key (or it is empty)", rcv.Namespace, rcv.Spec.SecretRef.Name, imv1.TokenKey))
	case obs.halfBasicAuth:
		setCondition(&st.Conditions, gen, imv1.ReadyCondition, metav1.ConditionFalse, imv1.IncompleteBasicAuthReason,
			fmt.Sprintf("Secret %s/%s has only one of %q and %q: set both for basic auth, or neither",
				rcv.Namespace, rcv.Spec.SecretRef.Name, imv1.UsernameKey, imv1.PasswordKey))
	default:
		st.WebhookPath = imv1.WebhookPath(rcv.Namespace, rcv.Name, obs.token)
		if obs.previousToken != "" {
			st.PreviousWebhookPath = imv1.WebhookPath(rcv.Namespace, rcv.Name, obs.previousToken)
		}
		setCondition(&st.Conditions, gen, imv1.ReadyCondition, metav1.ConditionTrue, imv1.SucceededReason,
			// Not the path itself: for OpenIM it is the credential, and
			// the message shows in kubectl get.
			"Receiving callbacks at status.webhookPath")
	}
	meta.RemoveStatusCondition(&st.Conditions, imv1.StalledCondition)
}
