package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// maxTriggersPerGroup is the schema's bound on status.triggers.
const maxTriggersPerGroup = 64

// groupTriggers sorts a namespace's triggers for one group.
type groupTriggers struct {
	// run are the valid triggers that select the group, sorted by name.
	run []*imv1.ChatGroupTrigger
	// keep names the triggers whose status entries stay: those that select
	// the group (valid or not: an invalid trigger keeps its cursor until it
	// is fixed) and those whose selector cannot be evaluated.
	keep map[string]bool
	// problems describe invalid triggers that select the group.
	problems []string
}

// matchTriggers lists the triggers in the group's namespace and sorts them
// out.
func (r *ChatGroupReconciler) matchTriggers(ctx context.Context, cg *imv1.ChatGroup) (groupTriggers, error) {
	var list imv1.ChatGroupTriggerList
	if err := r.client.List(ctx, &list, client.InNamespace(cg.Namespace)); err != nil {
		return groupTriggers{}, fmt.Errorf("listing ChatGroupTriggers: %w", err)
	}
	return selectTriggers(cg, list.Items), nil
}

// selectTriggers decides which triggers apply to a group.
func selectTriggers(cg *imv1.ChatGroup, triggers []imv1.ChatGroupTrigger) groupTriggers {
	m := groupTriggers{keep: map[string]bool{}}
	slices.SortFunc(triggers, func(a, b imv1.ChatGroupTrigger) int { return strings.Compare(a.Name, b.Name) })
	for i := range triggers {
		trig := &triggers[i]
		sel, err := metav1.LabelSelectorAsSelector(&trig.Spec.Selector)
		if err != nil {
			// Whether it selects the group is unknown: keep its progress.
			m.keep[trig.Name] = true
			continue
		}
		if !sel.Matches(labels.Set(cg.Labels)) {
			continue
		}
		m.keep[trig.Name] = true
		if err := validateTrigger(&trig.Spec); err != nil {
			m.problems = append(m.problems, fmt.Sprintf("ChatGroupTrigger %s is invalid: %v", trig.Name, err))
			continue
		}
		if len(m.run) == maxTriggersPerGroup {
			m.problems = append(m.problems, fmt.Sprintf("ChatGroupTrigger %s not run: more than %d triggers select the group", trig.Name, maxTriggersPerGroup))
			continue
		}
		m.run = append(m.run, trig)
	}
	return m
}

// syncTriggerStatuses drops the status entries of triggers that are gone
// or no longer select the group, and adds entries for new triggers.
func syncTriggerStatuses(cg *imv1.ChatGroup, m groupTriggers) {
	st := &cg.Status
	st.Triggers = slices.DeleteFunc(st.Triggers, func(ts imv1.TriggerStatus) bool { return !m.keep[ts.Name] })
	for _, trig := range m.run {
		if findTriggerStatus(st, trig.Name) == nil {
			st.Triggers = append(st.Triggers, imv1.TriggerStatus{Name: trig.Name, Cursor: newCursor(st)})
		}
	}
	slices.SortFunc(st.Triggers, func(a, b imv1.TriggerStatus) int { return strings.Compare(a.Name, b.Name) })
	if len(st.Triggers) == 0 {
		st.Triggers = nil
	}
}

// runTrigger runs the trigger's actions (a Job, a CloudEvent) for every
// journal entry after the trigger's cursor that the trigger reacts to, and
// moves the cursor past each entry once its Job exists and its CloudEvent
// was delivered or given up on. The cursor never passes an entry whose Job
// could not be created, so nothing is skipped silently.
func (r *ChatGroupReconciler) runTrigger(ctx context.Context, cg *imv1.ChatGroup, trig *imv1.ChatGroupTrigger, obs *groupObservation) error {
	ts := findTriggerStatus(&cg.Status, trig.Name)
	r.advanceCursor(ctx, cg, trig, ts)

	for _, entry := range pendingEntries(ts.Cursor, cg.Status.Journal) {
		if triggerMatches(trig.Spec.On, &entry) {
			done, err := r.runActions(ctx, cg, trig, &entry, ts, obs)
			if err != nil || !done {
				return err
			}
		}
		ts.Cursor = entry.Seq
	}
	return r.refreshLastJob(ctx, cg, ts)
}

// advanceCursor moves a cursor that fell behind the journal ring forward, and
// reports the entries the trigger missed: they are counted in status, in a
// metric and in a Warning Event.
func (r *ChatGroupReconciler) advanceCursor(ctx context.Context, cg *imv1.ChatGroup, trig *imv1.ChatGroupTrigger, ts *imv1.TriggerStatus) {
	cursor, missed := catchUp(ts.Cursor, &cg.Status)
	if cursor < ts.Cursor {
		ctrl.LoggerFrom(ctx).Info("Restarting a trigger cursor that is ahead of the journal",
			"trigger", trig.Name, "cursor", ts.Cursor, "lastSeq", cg.Status.LastSeq)
	}
	if missed > 0 {
		ts.Missed += missed
		triggerMissedEntries.WithLabelValues(cg.Namespace, trig.Name).Add(float64(missed))
		r.recorder.Eventf(cg, trig, corev1.EventTypeWarning, entriesMissedReason, runTriggerAction,
			"Trigger %s missed %d journal entries (seq %d to %d): they left the journal before it handled them",
			trig.Name, missed, ts.Cursor+1, cursor)
	}
	ts.Cursor = cursor
}

// startJob creates the Job for one journal entry, as the trigger's
// ServiceAccount. It reports false without an error when the API server
// refused the Job: a rejected template, or a ServiceAccount that may not
// create it. That is a problem in the trigger or in the namespace's RBAC,
// recorded in obs, and the trigger waits until it is fixed.
func (r *ChatGroupReconciler) startJob(ctx context.Context, cg *imv1.ChatGroup, trig *imv1.ChatGroupTrigger,
	entry *imv1.JournalEntry, ts *imv1.TriggerStatus, obs *groupObservation) (bool, error) {
	job, err := buildJob(cg, trig, entry)
	if err != nil {
		return false, err
	}
	if err := controllerutil.SetControllerReference(cg, job, r.scheme); err != nil {
		return false, fmt.Errorf("setting the owner of Job %s: %w", job.Name, err)
	}
	sa := triggerServiceAccount(trig)
	jobs, err := r.jobClients.For(cg.Namespace, sa)
	if err != nil {
		return false, err
	}

	err = jobs.Create(ctx, job)
	switch {
	case err == nil:
		triggerJobs.WithLabelValues("created").Inc()
		ctrl.LoggerFrom(ctx).Info("Created Job", "job", job.Name, "trigger", trig.Name, "seq", entry.Seq, "serviceAccount", sa)
		r.recorder.Eventf(cg, job, corev1.EventTypeNormal, jobCreatedReason, runTriggerAction,
			"Created Job %s for trigger %s (%s, seq %d)", job.Name, trig.Name, journalReason(entry), entry.Seq)
	case apierrors.IsAlreadyExists(err):
		if ours, err := r.adoptExistingJob(ctx, cg, trig.Name, entry.Seq, job.Name, obs); !ours || err != nil {
			return false, err
		}
	case apierrors.IsForbidden(err):
		triggerJobs.WithLabelValues("forbidden").Inc()
		obs.forbidden = append(obs.forbidden, fmt.Sprintf("ChatGroupTrigger %s: ServiceAccount %s may not create the Job for seq %d: %v",
			trig.Name, sa, entry.Seq, err))
		return false, nil
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		triggerJobs.WithLabelValues("rejected").Inc()
		obs.problems = append(obs.problems, fmt.Sprintf("ChatGroupTrigger %s: Job for seq %d rejected: %v", trig.Name, entry.Seq, err))
		return false, nil
	default:
		triggerJobs.WithLabelValues("error").Inc()
		return false, fmt.Errorf("creating Job %s for trigger %s: %w", job.Name, trig.Name, err)
	}

	ts.LastJob, ts.LastJobSeq, ts.LastJobOutcome = job.Name, entry.Seq, imv1.JobRunning
	return true, nil
}

// adoptExistingJob handles a Job that already has the entry's name. It was
// created before a crash or by an earlier reconcile whose cursor update was
// lost: the deterministic name makes it the same work, as long as the Job
// really is ours. A Job that is not is a problem for the user, recorded in
// obs.
func (r *ChatGroupReconciler) adoptExistingJob(ctx context.Context, cg *imv1.ChatGroup, trigger string, seq int64,
	name string, obs *groupObservation) (bool, error) {
	ours, err := r.verifyExistingJob(ctx, cg, trigger, seq, name)
	switch {
	case err != nil:
		triggerJobs.WithLabelValues("error").Inc()
		return false, err
	case !ours:
		triggerJobs.WithLabelValues("rejected").Inc()
		obs.problems = append(obs.problems, fmt.Sprintf(
			"ChatGroupTrigger %s: Job %s for seq %d exists but this ChatGroup does not control it; delete it to let the trigger run",
			trigger, name, seq))
		return false, nil
	}
	triggerJobs.WithLabelValues("exists").Inc()
	return true, nil
}

// verifyExistingJob reads a Job that already exists from the API server
// (the cache may not have it yet) and reports whether it was made for this
// entry.
func (r *ChatGroupReconciler) verifyExistingJob(ctx context.Context, cg *imv1.ChatGroup, trigger string, seq int64, name string) (bool, error) {
	existing := &batchv1.Job{}
	if err := r.apiReader.Get(ctx, types.NamespacedName{Namespace: cg.Namespace, Name: name}, existing); err != nil {
		return false, fmt.Errorf("reading existing Job %s: %w", name, err)
	}
	return isJobFor(existing, cg, trigger, seq), nil
}

// refreshLastJob reads the trigger's last Job and records its outcome,
// sending an Event when it finishes. A Job that is not in the cache keeps
// its recorded outcome: it may be too new to be cached, or deleted after it
// finished (ttlSecondsAfterFinished).
func (r *ChatGroupReconciler) refreshLastJob(ctx context.Context, cg *imv1.ChatGroup, ts *imv1.TriggerStatus) error {
	if ts.LastJob == "" {
		return nil
	}
	job := &batchv1.Job{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: cg.Namespace, Name: ts.LastJob}, job); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading Job %s: %w", ts.LastJob, err)
	}
	if !isJobFor(job, cg, ts.Name, ts.LastJobSeq) {
		return nil
	}
	outcome := jobOutcome(job)
	if outcome != ts.LastJobOutcome {
		switch outcome {
		case imv1.JobSucceeded:
			r.recorder.Eventf(cg, job, corev1.EventTypeNormal, jobSucceededReason, runTriggerAction,
				"Job %s of trigger %s (seq %d) succeeded", job.Name, ts.Name, ts.LastJobSeq)
		case imv1.JobFailed:
			r.recorder.Eventf(cg, job, corev1.EventTypeWarning, jobFailedReason, runTriggerAction,
				"Job %s of trigger %s (seq %d) failed", job.Name, ts.Name, ts.LastJobSeq)
		}
	}
	ts.LastJobOutcome = outcome
	return nil
}

// observeCleanup finds, for each trigger that runs a Job on Disbanded, the
// Job it started for the newest Disbanded journal entry. CloudEvents do not
// count as cleanup.
func (r *ChatGroupReconciler) observeCleanup(ctx context.Context, cg *imv1.ChatGroup, triggers []*imv1.ChatGroupTrigger) ([]cleanupJob, error) {
	disband := lastEntryOfKind(cg.Status.Journal, imv1.EventDisbanded)
	var jobs []cleanupJob
	for _, trig := range triggers {
		if trig.Spec.JobTemplate == nil || !reactsTo(trig, imv1.TriggerDisbanded) {
			continue
		}
		if disband == nil {
			jobs = append(jobs, cleanupJob{trigger: trig.Name, lost: true})
			continue
		}
		j, counts, err := r.cleanupJobOf(ctx, cg, trig, disband.Seq)
		if err != nil {
			return nil, err
		}
		if counts {
			jobs = append(jobs, j)
		}
	}
	return jobs, nil
}

// cleanupJobOf observes one trigger's Job for the disband entry. counts is
// false when the trigger handled the entry without a Job, which happens when
// Disbanded was added to its `on` after it passed the entry.
func (r *ChatGroupReconciler) cleanupJobOf(ctx context.Context, cg *imv1.ChatGroup, trig *imv1.ChatGroupTrigger, seq int64) (cleanupJob, bool, error) {
	ts := findTriggerStatus(&cg.Status, trig.Name)
	j := cleanupJob{trigger: trig.Name, job: jobName(cg, trig.Name, seq), ttl: trig.Spec.TTLAfterDisband}
	if ts == nil || ts.Cursor < seq {
		return j, true, nil // not started yet
	}
	key := types.NamespacedName{Namespace: cg.Namespace, Name: j.job}
	job := &batchv1.Job{}
	err := r.client.Get(ctx, key, job)
	if apierrors.IsNotFound(err) {
		// The Job may have been created moments ago: ask the API server.
		err = r.apiReader.Get(ctx, key, job)
	}
	switch {
	case err == nil && isJobFor(job, cg, trig.Name, seq):
		j.outcome = jobOutcome(job)
		return j, true, nil
	case err != nil && !apierrors.IsNotFound(err):
		return j, false, fmt.Errorf("reading cleanup Job %s: %w", j.job, err)
	case ts.LastJob == j.job && ts.LastJobOutcome == imv1.JobSucceeded:
		j.outcome = imv1.JobSucceeded // deleted after it finished
		return j, true, nil
	case ts.LastJob == j.job:
		j.outcome = imv1.JobFailed // deleted before it succeeded
		return j, true, nil
	default:
		return j, false, nil
	}
}
