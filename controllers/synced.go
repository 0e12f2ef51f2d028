package controllers

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// setSyncedCondition derives the Synced condition from status.lastSync,
// which the resync loop (internal/resync) writes. Without a resync so far
// the condition is absent.
func setSyncedCondition(conds *[]metav1.Condition, generation int64, last *imv1.SyncStatus) {
	if last == nil {
		meta.RemoveStatusCondition(conds, imv1.SyncedCondition)
		return
	}
	at := last.Time.UTC().Format("2006-01-02T15:04:05Z")
	switch last.Result {
	case imv1.SyncSucceeded:
		setCondition(conds, generation, imv1.SyncedCondition, metav1.ConditionTrue, imv1.ResyncSucceededReason,
			fmt.Sprintf("Resynced from the provider at %s; %d corrections", at, last.Corrections))
	case imv1.SyncPartial:
		setCondition(conds, generation, imv1.SyncedCondition, metav1.ConditionFalse, imv1.ResyncPartialReason,
			truncateNote(fmt.Sprintf("Resync at %s: %s", at, last.Message), 1024))
	default:
		setCondition(conds, generation, imv1.SyncedCondition, metav1.ConditionFalse, imv1.ResyncFailedReason,
			truncateNote(fmt.Sprintf("Resync at %s failed: %s", at, last.Message), 1024))
	}
}

// setReceiverSynced sets a receiver's Synced condition: absent without
// spec.resync, otherwise from status.lastSync.
func setReceiverSynced(rcv *imv1.ChatReceiver) {
	if rcv.Spec.Resync == nil {
		meta.RemoveStatusCondition(&rcv.Status.Conditions, imv1.SyncedCondition)
		return
	}
	setSyncedCondition(&rcv.Status.Conditions, rcv.Generation, rcv.Status.LastSync)
}

// lastSyncChangedPredicate passes updates that change status.lastSync, so
// the receiver reconciler updates Synced after each resync pass.
func lastSyncChangedPredicate() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, okOld := e.ObjectOld.(*imv1.ChatReceiver)
			n, okNew := e.ObjectNew.(*imv1.ChatReceiver)
			return okOld && okNew && !equality.Semantic.DeepEqual(o.Status.LastSync, n.Status.LastSync)
		},
	}
}
