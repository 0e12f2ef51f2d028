package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

func TestSetSyncedCondition(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	cases := []struct {
		name   string
		last   *imv1.SyncStatus
		status metav1.ConditionStatus
		reason string
	}{
		{"never resynced", nil, "", ""},
		{"succeeded", &imv1.SyncStatus{Time: at, Result: imv1.SyncSucceeded, Corrections: 2}, metav1.ConditionTrue, imv1.ResyncSucceededReason},
		{"failed", &imv1.SyncStatus{Time: at, Result: imv1.SyncFailed, Message: "get_group_info: error 502"}, metav1.ConditionFalse, imv1.ResyncFailedReason},
		{"partial", &imv1.SyncStatus{Time: at, Result: imv1.SyncPartial, Message: "shifted"}, metav1.ConditionFalse, imv1.ResyncPartialReason},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conds := []metav1.Condition{{Type: imv1.SyncedCondition, Status: metav1.ConditionUnknown, Reason: "Old"}}
			setSyncedCondition(&conds, 3, tc.last)
			c := meta.FindStatusCondition(conds, imv1.SyncedCondition)
			if tc.last == nil {
				if c != nil {
					t.Fatalf("Synced = %+v, want none", c)
				}
				return
			}
			if c == nil || c.Status != tc.status || c.Reason != tc.reason || c.ObservedGeneration != 3 {
				t.Fatalf("Synced = %+v, want %s/%s", c, tc.status, tc.reason)
			}
		})
	}
}

func TestSetReceiverSynced_withoutResync(t *testing.T) {
	rcv := &imv1.ChatReceiver{Status: imv1.ChatReceiverStatus{
		Conditions: []metav1.Condition{{Type: imv1.SyncedCondition, Status: metav1.ConditionTrue, Reason: "x"}},
		LastSync:   &imv1.SyncStatus{Result: imv1.SyncSucceeded},
	}}
	setReceiverSynced(rcv)
	if meta.FindStatusCondition(rcv.Status.Conditions, imv1.SyncedCondition) != nil {
		t.Fatal("Synced kept on a receiver without spec.resync")
	}
}
