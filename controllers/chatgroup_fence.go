package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatreceivers/status,verbs=get;patch

// leaveFence records a disbanded ChatGroup's disband time on its receiver
// before the group is deleted, so that the callback server does not let a
// late event of the old incarnation re-create it. Fences older than
// DisbandFenceTTL are dropped on the way. A group without a receiver label
// or whose receiver is gone gets no fence.
func (r *ChatGroupReconciler) leaveFence(ctx context.Context, cg *imv1.ChatGroup) error {
	name := cg.Labels[imv1.ReceiverLabel]
	if name == "" || cg.Status.DisbandedAt == nil {
		return nil
	}
	rcv := &imv1.ChatReceiver{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: cg.Namespace, Name: name}, rcv); err != nil {
		if apierrors.IsNotFound(err) {
			ctrl.LoggerFrom(ctx).Info("No receiver to keep the disband fence on", "chatReceiver", name)
			return nil
		}
		return fmt.Errorf("reading ChatReceiver %s: %w", name, err)
	}
	base := rcv.DeepCopy()
	now := r.now()
	fences := []imv1.DisbandFence{{Name: cg.Name, DisbandedAt: *cg.Status.DisbandedAt, DeletedAt: metav1.NewTime(now)}}
	for _, f := range rcv.Status.DisbandFences {
		if f.Name != cg.Name && now.Sub(f.DeletedAt.Time) < imv1.DisbandFenceTTL && len(fences) < 1000 {
			fences = append(fences, f)
		}
	}
	rcv.Status.DisbandFences = fences
	if err := r.client.Status().Patch(ctx, rcv, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("recording the disband fence on ChatReceiver %s: %w", name, err)
	}
	return nil
}
