package controllers

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
)

// setCondition sets a condition with the generation it describes, as
// kstatus expects.
func setCondition(conds *[]metav1.Condition, generation int64, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	})
}

// setInvalidSpec marks an object whose spec cannot work: not Ready and
// Stalled, with the same reason, until the spec changes.
func setInvalidSpec(conds *[]metav1.Condition, generation int64, specErr error) {
	msg := "Invalid spec: " + specErr.Error()
	setCondition(conds, generation, imv1.ReadyCondition, metav1.ConditionFalse, imv1.InvalidSpecReason, msg)
	setCondition(conds, generation, imv1.StalledCondition, metav1.ConditionTrue, imv1.InvalidSpecReason, msg)
}

// readyChanged reports whether the Ready condition changed status or
// reason between two condition lists. Events are sent only on such
// transitions, never on every reconcile.
func readyChanged(before, after []metav1.Condition) bool {
	b := meta.FindStatusCondition(before, imv1.ReadyCondition)
	a := meta.FindStatusCondition(after, imv1.ReadyCondition)
	if a == nil {
		return false
	}
	return b == nil || b.Status != a.Status || b.Reason != a.Reason
}

// listBounded joins at most limit items and says how many more there are.
func listBounded(items []string, extra int, limit int) string {
	shown := items
	if len(shown) > limit {
		extra += len(shown) - limit
		shown = shown[:limit]
	}
	out := strings.Join(shown, ", ")
	if extra > 0 {
		out += " and " + strconv.Itoa(extra) + " more"
	}
	return out
}

// truncateNote keeps a message within max bytes without splitting a UTF-8
// character, marking the cut with "...".
func truncateNote(s string, maxLen int) string {
	if len(s) <= maxLen {
		return s
	}
	return groupstate.TruncateUTF8(s, maxLen-len("...")) + "..."
}
