package controllers

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// groupObservation is what one reconcile of a ChatGroup observed: the input
// of its conditions.
type groupObservation struct {
	// problems are spec errors the user must fix: invalid matching
	// triggers, or Jobs the API server rejected.
	problems []string
	// forbidden describe Jobs that a trigger's ServiceAccount may not
	// create (RBAC or admission): the namespace's administrator must fix
	// them, and nothing wakes the group when they do, so it is retried.
	forbidden []string
	// cleanup holds the disband Job of each matching trigger that runs on
	// Disbanded; it is only filled in for disbanded groups.
	cleanup []cleanupJob
	// failed is true when the reconcile hit a transient error. Ready and
	// observedGeneration are then left as they were: the error is retried.
	failed bool
	// requeueAfter, when positive, is when the group must be looked at
	// again (a CloudEvent to retry).
	requeueAfter time.Duration
}

// requeue asks for the group to be reconciled again within d.
func (o *groupObservation) requeue(d time.Duration) {
	if o.requeueAfter <= 0 || d < o.requeueAfter {
		o.requeueAfter = d
	}
}

// cleanupJob is one trigger's Job for the disband journal entry.
type cleanupJob struct {
	trigger string
	job     string
	// outcome is empty while the Job has not been created.
	outcome imv1.JobOutcome
	// ttl is the trigger's ttlAfterDisband, or nil.
	ttl *metav1.Duration
	// lost is true when the Disbanded entry left the journal, so the Job
	// cannot be identified.
	lost bool
}

// setGroupConditions derives every condition the reconciler owns from the
// status written by the callback server and from what was observed.
func setGroupConditions(cg *imv1.ChatGroup, obs groupObservation) {
	st := &cg.Status
	gen := cg.Generation

	if st.Disbanded {
		setCondition(&st.Conditions, gen, imv1.DisbandedCondition, metav1.ConditionTrue, imv1.GroupDisbandedReason, "The group was disbanded")
	} else {
		setCondition(&st.Conditions, gen, imv1.DisbandedCondition, metav1.ConditionFalse, imv1.ActiveReason, "The group is active")
	}

	listed, where := int32(len(st.Members)), "status.members"
	if st.MemberSlices != nil {
		listed, where = st.MemberSlices.Listed, "the member slices"
	}
	if listed < st.MemberCount {
		setCondition(&st.Conditions, gen, imv1.MembersTruncatedCondition, metav1.ConditionTrue, imv1.MemberBoundReason,
			fmt.Sprintf("%s list %d of %d members", where, listed, st.MemberCount))
	} else {
		meta.RemoveStatusCondition(&st.Conditions, imv1.MembersTruncatedCondition)
	}

	if st.Disbanded {
		status, reason, msg := summarizeCleanup(obs.cleanup)
		setCondition(&st.Conditions, gen, imv1.CleanupSucceededCondition, status, reason, msg)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, imv1.CleanupSucceededCondition)
	}

	if msg := missedMessage(st.Triggers); msg != "" {
		setCondition(&st.Conditions, gen, imv1.EventsMissedCondition, metav1.ConditionTrue, imv1.JournalOverrunReason, msg)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, imv1.EventsMissedCondition)
	}

	setSyncedCondition(&st.Conditions, gen, st.LastSync)

	if obs.failed {
		return
	}
	status, reason, msg := groupReadiness(st, obs)
	setCondition(&st.Conditions, gen, imv1.ReadyCondition, status, reason, msg)
	st.ObservedGeneration = gen
}

// groupReadiness summarises the group: spec problems first, then Jobs a
// trigger's ServiceAccount may not create, then failed Jobs.
func groupReadiness(st *imv1.ChatGroupStatus, obs groupObservation) (metav1.ConditionStatus, string, string) {
	if len(obs.problems) > 0 {
		return metav1.ConditionFalse, imv1.InvalidSpecReason, strings.Join(obs.problems, "; ")
	}
	if len(obs.forbidden) > 0 {
		return metav1.ConditionFalse, imv1.JobForbiddenReason, strings.Join(obs.forbidden, "; ")
	}
	var failed []string
	for _, ts := range st.Triggers {
		if ts.LastJobOutcome == imv1.JobFailed {
			failed = append(failed, fmt.Sprintf("Job %s of trigger %s (seq %d)", ts.LastJob, ts.Name, ts.LastJobSeq))
		}
	}
	if len(failed) > 0 {
		return metav1.ConditionFalse, imv1.JobFailedReason, "Failed: " + listBounded(failed, 0, 5)
	}
	return metav1.ConditionTrue, imv1.SucceededReason, fmt.Sprintf("Reconciled up to journal seq %d", st.LastSeq)
}

// summarizeCleanup turns the cleanup Jobs into the CleanupSucceeded
// condition: a lost disband entry or a failure wins, then anything still
// running.
func summarizeCleanup(jobs []cleanupJob) (metav1.ConditionStatus, string, string) {
	if len(jobs) == 0 {
		return metav1.ConditionTrue, imv1.NoCleanupTriggersReason, "No matching ChatGroupTrigger runs a Job on Disbanded"
	}
	var failed, running, succeeded, lost []string
	for _, j := range jobs {
		desc := fmt.Sprintf("%s (trigger %s)", j.job, j.trigger)
		switch {
		case j.lost:
			lost = append(lost, j.trigger)
		case j.outcome == imv1.JobFailed:
			failed = append(failed, desc)
		case j.outcome == imv1.JobSucceeded:
			succeeded = append(succeeded, desc)
		default:
			running = append(running, desc)
		}
	}
	switch {
	case len(lost) > 0:
		return metav1.ConditionFalse, imv1.JournalOverrunReason,
			"The Disbanded entry left the journal; cleanup cannot be tracked for triggers " + listBounded(lost, 0, 5)
	case len(failed) > 0:
		return metav1.ConditionFalse, imv1.JobFailedReason, "Cleanup Job failed: " + listBounded(failed, 0, 5)
	case len(running) > 0:
		return metav1.ConditionFalse, imv1.JobRunningReason, "Waiting for cleanup Job: " + listBounded(running, 0, 5)
	default:
		return metav1.ConditionTrue, imv1.JobSucceededReason, "Cleanup Job succeeded: " + listBounded(succeeded, 0, 5)
	}
}

// missedMessage describes the triggers that missed journal entries, or is
// empty when none did.
func missedMessage(triggers []imv1.TriggerStatus) string {
	var missed []string
	for _, ts := range triggers {
		if ts.Missed > 0 {
			missed = append(missed, fmt.Sprintf("%s missed %d", ts.Name, ts.Missed))
		}
	}
	if len(missed) == 0 {
		return ""
	}
	return "Journal entries left the ring before triggers handled them: " + listBounded(missed, 0, 5)
}

// ttlDeadline is when a disbanded group whose cleanup succeeded may be
// deleted: the longest ttlAfterDisband of its cleanup triggers after
// CleanupSucceeded turned True. ok is false when no TTL applies.
func ttlDeadline(cg *imv1.ChatGroup, cleanup []cleanupJob) (deadline time.Time, ok bool) {
	if !cg.Status.Disbanded {
		return time.Time{}, false
	}
	cond := meta.FindStatusCondition(cg.Status.Conditions, imv1.CleanupSucceededCondition)
	if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != imv1.JobSucceededReason {
		return time.Time{}, false
	}
	var ttl *time.Duration
	for _, j := range cleanup {
		if j.ttl != nil && (ttl == nil || j.ttl.Duration > *ttl) {
			ttl = &j.ttl.Duration
		}
	}
	if ttl == nil {
		return time.Time{}, false
	}
	return cond.LastTransitionTime.Add(*ttl), true
}
