package controllers

import (
	"errors"
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/cloudevent"
)

// validateTrigger checks what the CRD schema cannot: the selector parses,
// the trigger has an action, the jobTemplate can become a Job and the
// cloudEvent's url is usable. Both the trigger reconciler (for the
// trigger's Ready condition) and the group reconciler (which must not act on
// a trigger it has not validated itself) call it.
func validateTrigger(spec *imv1.ChatGroupTriggerSpec) error {
	if _, err := metav1.LabelSelectorAsSelector(&spec.Selector); err != nil {
		return fmt.Errorf("invalid selector: %w", err)
	}
	if len(spec.On) == 0 {
		return errors.New("on lists no events")
	}
	if spec.JobTemplate == nil && spec.CloudEvent == nil {
		return errors.New("the trigger has no action: set jobTemplate, cloudEvent or both")
	}
	if spec.JobTemplate != nil {
		if err := validateJobTemplate(spec.JobTemplate); err != nil {
			return err
		}
		if err := validateJobIdentity(spec); err != nil {
			return err
		}
	}
	if ce := spec.CloudEvent; ce != nil {
		if ce.URL != "" {
			if err := cloudevent.ValidateURL(ce.URL); err != nil {
				return fmt.Errorf("cloudEvent url: %w", err)
			}
		}
		if ce.SecretRef != nil && ce.SecretRef.Name == "" {
			return errors.New("cloudEvent secretRef has no name")
		}
	}
	return nil
}

// validateJobTemplate checks that a jobTemplate can become a Job.
func validateJobTemplate(tmpl *batchv1.JobTemplateSpec) error {
	pod := &tmpl.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		return errors.New("jobTemplate has no containers")
	}
	// An empty restartPolicy defaults to Always, which Jobs reject.
	if p := pod.RestartPolicy; p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
		return fmt.Errorf("jobTemplate restartPolicy must be Never or OnFailure, not %q", p)
	}
	return nil
}

// validateJobIdentity refuses a template that names a ServiceAccount other
// than the trigger's: the Pods run as the ServiceAccount the Job is created
// as, which spec.serviceAccountName states for everyone to see.
func validateJobIdentity(spec *imv1.ChatGroupTriggerSpec) error {
	want := spec.ServiceAccountName
	if want == "" {
		want = defaultServiceAccount
	}
	pod := &spec.JobTemplate.Spec.Template.Spec
	for _, named := range []string{pod.ServiceAccountName, pod.DeprecatedServiceAccount} {
		if named != "" && named != want {
			return fmt.Errorf("jobTemplate names ServiceAccount %q: set spec.serviceAccountName instead (the Job is created as, and runs as, %q)", named, want)
		}
	}
	return nil
}

// triggerMatches reports whether a journal entry is one of the events a
// trigger reacts to. MemberKicked matches only leaves with reason Kicked;
// MembersLeft matches every leave.
func triggerMatches(on []imv1.TriggerEvent, e *imv1.JournalEntry) bool {
	for _, ev := range on {
		switch {
		case ev == imv1.TriggerMemberKicked:
			if e.Kind == imv1.EventMembersLeft && e.Reason == imv1.LeaveKicked {
				return true
			}
		case string(ev) == string(e.Kind):
			return true
		}
	}
	return false
}

// reactsTo reports whether a trigger lists an event kind in on.
func reactsTo(trig *imv1.ChatGroupTrigger, ev imv1.TriggerEvent) bool {
	return slices.Contains(trig.Spec.On, ev)
}

// oldestSeq is the seq of the oldest journal entry still in the ring, or
// lastSeq+1 when the journal is empty.
func oldestSeq(st *imv1.ChatGroupStatus) int64 {
	if len(st.Journal) == 0 {
		return st.LastSeq + 1
	}
	return st.Journal[0].Seq
}

// newCursor is where a trigger seen for the first time starts: just before
// the oldest entry still in the journal. A new trigger therefore handles
// every entry the journal still holds (so a cleanup trigger added after a
// group was disbanded still cleans it up), and entries that left the ring
// before the trigger existed are not counted as missed.
func newCursor(st *imv1.ChatGroupStatus) int64 {
	return oldestSeq(st) - 1
}

// catchUp moves a cursor that fell behind the journal ring to just before
// the oldest entry, and returns how many entries the trigger missed. A
// cursor ahead of lastSeq cannot be trusted (the status was edited or
// reset), so it restarts like a new trigger; the deterministic Job names
// keep entries it already handled from running twice.
func catchUp(cursor int64, st *imv1.ChatGroupStatus) (newPos, missed int64) {
	oldest := oldestSeq(st)
	switch {
	case cursor > st.LastSeq:
		return newCursor(st), 0
	case oldest > cursor+1:
		return oldest - 1, oldest - 1 - cursor
	default:
		return cursor, 0
	}
}

// pendingEntries are the journal entries after the cursor, oldest first.
func pendingEntries(cursor int64, journal []imv1.JournalEntry) []imv1.JournalEntry {
	for i := range journal {
		if journal[i].Seq > cursor {
			return journal[i:]
		}
	}
	return nil
}

// lastEntryOfKind returns the newest journal entry of a kind, or nil.
func lastEntryOfKind(journal []imv1.JournalEntry, kind imv1.EventKind) *imv1.JournalEntry {
	for i := len(journal) - 1; i >= 0; i-- {
		if journal[i].Kind == kind {
			return &journal[i]
		}
	}
	return nil
}

// findTriggerStatus returns the status entry for a trigger, or nil.
func findTriggerStatus(st *imv1.ChatGroupStatus, name string) *imv1.TriggerStatus {
	for i := range st.Triggers {
		if st.Triggers[i].Name == name {
			return &st.Triggers[i]
		}
	}
	return nil
}
