package controllers

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

func TestChatGroupTriggerReconciler_Reconcile(t *testing.T) {
	c := integration(t)
	ns := newNamespace(t, c)
	startManager(t, ns)
	g := NewWithT(t)

	valid := newTrigger(t, c, ns, "valid", nil, imv1.TriggerCreated)
	invalid := &imv1.ChatGroupTrigger{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "invalid"},
		Spec: imv1.ChatGroupTriggerSpec{
			On:       []imv1.TriggerEvent{imv1.TriggerCreated},
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"selected": "invalid"}},
			// The schema accepts it; it has no containers.
			JobTemplate: &batchv1.JobTemplateSpec{},
		},
	}
	g.Expect(c.Create(context.Background(), invalid)).To(Succeed())
	cg := newGroup(t, c, ns, "@TGS#INVALID", map[string]string{"selected": "invalid"})

	readiness := func(obj client.Object, conds func() []metav1.Condition) func(g Gomega) *metav1.Condition {
		return func(g Gomega) *metav1.Condition {
			g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
			return meta.FindStatusCondition(conds(), imv1.ReadyCondition)
		}
	}
	g.Eventually(readiness(valid, func() []metav1.Condition { return valid.Status.Conditions }), timeout, interval).
		Should(HaveField("Status", metav1.ConditionTrue))
	g.Eventually(readiness(invalid, func() []metav1.Condition { return invalid.Status.Conditions }), timeout, interval).
		Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", imv1.InvalidSpecReason)))
	g.Expect(meta.IsStatusConditionTrue(invalid.Status.Conditions, imv1.StalledCondition)).To(BeTrue())
	// A group selected by an invalid trigger says so.
	g.Eventually(readiness(cg, func() []metav1.Condition { return cg.Status.Conditions }), timeout, interval).
		Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", imv1.InvalidSpecReason)))
}
