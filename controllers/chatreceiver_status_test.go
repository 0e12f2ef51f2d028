package controllers

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

func TestSetReceiverStatus(t *testing.T) {
	lastEvent := metav1.Now()
	tests := []struct {
		name         string
		obs          receiverObservation
		wantReason   string
		wantReady    metav1.ConditionStatus
		wantStalled  bool
		wantPath     string
		wantPrevious string
	}{
		{name: "publishes the paths", obs: receiverObservation{token: "t1", previousToken: "t0"},
			wantReason: imv1.SucceededReason, wantReady: metav1.ConditionTrue,
			wantPath: imv1.WebhookPath("ns", "rcv", "t1"), wantPrevious: imv1.WebhookPath("ns", "rcv", "t0")},
		{name: "publishes no previous path without a previous token", obs: receiverObservation{token: "t1"},
			wantReason: imv1.SucceededReason, wantReady: metav1.ConditionTrue, wantPath: imv1.WebhookPath("ns", "rcv", "t1")},
		{name: "reports a missing Secret", obs: receiverObservation{secretMissing: true},
			wantReason: imv1.SecretNotFoundReason, wantReady: metav1.ConditionFalse},
		{name: "reports a missing token", obs: receiverObservation{previousToken: "t0"},
			wantReason: imv1.TokenNotFoundReason, wantReady: metav1.ConditionFalse},
		{name: "stalls on an invalid spec", obs: receiverObservation{specErr: errors.New("bad")},
			wantReason: imv1.InvalidSpecReason, wantReady: metav1.ConditionFalse, wantStalled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			rcv := &imv1.ChatReceiver{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "rcv", Generation: 2}}
			rcv.Status.WebhookPath, rcv.Status.PreviousWebhookPath = "/callbacks/old", "/callbacks/older"
			rcv.Status.LastEventTime = &lastEvent
			setCondition(&rcv.Status.Conditions, 1, imv1.StalledCondition, metav1.ConditionTrue, imv1.InvalidSpecReason, "old")

			setReceiverStatus(rcv, tt.obs)
			ready := meta.FindStatusCondition(rcv.Status.Conditions, imv1.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(tt.wantReady))
			g.Expect(ready.Reason).To(Equal(tt.wantReason))
			g.Expect(ready.ObservedGeneration).To(Equal(int64(2)))
			g.Expect(meta.IsStatusConditionTrue(rcv.Status.Conditions, imv1.StalledCondition)).To(Equal(tt.wantStalled))
			g.Expect(rcv.Status.WebhookPath).To(Equal(tt.wantPath))
			g.Expect(rcv.Status.PreviousWebhookPath).To(Equal(tt.wantPrevious))
			g.Expect(rcv.Status.ObservedGeneration).To(Equal(int64(2)))
			g.Expect(rcv.Status.LastEventTime).To(Equal(&lastEvent), "owned by the callback server")
		})
	}
}

func TestValidateReceiver(t *testing.T) {
	g := NewWithT(t)
	g.Expect(validateReceiver(&imv1.ChatReceiverSpec{AllowedCIDRs: []string{"10.0.0.0/8", "::1/128"}})).To(Succeed())
	g.Expect(validateReceiver(&imv1.ChatReceiverSpec{AllowedCIDRs: []string{"10.0.0.0/8", "10.0.0.0"}})).
		To(MatchError(ContainSubstring("allowedCIDRs")))
}
