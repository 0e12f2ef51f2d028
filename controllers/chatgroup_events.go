package controllers

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

const (
	// maxNoteBytes is the events.k8s.io limit on an Event's note.
	maxNoteBytes = 1024
	// maxMembersInNote bounds the user IDs listed in one Event.
	maxMembersInNote = 10
)

// Event reasons besides the journal kinds.
const (
	memberKickedReason  = "MemberKicked"
	notAnnouncedReason  = "JournalEntriesNotAnnounced"
	entriesMissedReason = "TriggerEntriesMissed"
	jobCreatedReason    = "JobCreated"
	jobSucceededReason  = "JobSucceeded"
	jobFailedReason     = "JobFailed"
	ttlExpiredReason    = "TTLExpired"
	announceAction      = "Announce"
	runTriggerAction    = "RunTrigger"
	deleteAction        = "Delete"
	reconcileAction     = "Reconcile"
)

// announcement is the plan for publishing a group's journal as Kubernetes
// Events.
type announcement struct {
	// entries get one Event each, oldest first.
	entries []imv1.JournalEntry
	// skipped counts entries that will never get an Event: they left the
	// journal ring first, or exceeded the bound.
	skipped int64
	// upTo is the new announcedSeq.
	upTo int64
}

// planAnnouncement decides which journal entries to publish. A group's
// journal starts at seq 1, so entries between announcedSeq and the oldest
// entry in the ring were dropped before they were announced.
func planAnnouncement(st *imv1.ChatGroupStatus, limit int) announcement {
	// An announcedSeq ahead of lastSeq means the status was reset; it
	// restarts at lastSeq.
	a := announcement{upTo: st.LastSeq}
	if st.LastSeq <= st.AnnouncedSeq {
		return a
	}
	if oldest := oldestSeq(st); oldest > st.AnnouncedSeq+1 {
		a.skipped = oldest - 1 - st.AnnouncedSeq
	}
	a.entries = pendingEntries(st.AnnouncedSeq, st.Journal)
	if n := len(a.entries) - limit; n > 0 {
		a.skipped += int64(n)
		a.entries = a.entries[n:]
	}
	return a
}

// journalReason is the Event reason for a journal entry: its kind, except
// that kicks are told apart from voluntary leaves.
func journalReason(e *imv1.JournalEntry) string {
	if e.Kind == imv1.EventMembersLeft && e.Reason == imv1.LeaveKicked {
		return memberKickedReason
	}
	return string(e.Kind)
}

// journalNote is the Event note for a journal entry, for example
// "Members joined: alice, bob; by carol (seq 7)".
func journalNote(e *imv1.JournalEntry) string {
	return journalNoteWithin(e, maxNoteBytes)
}

// journalNoteWithin is journalNote in at most limit bytes.
func journalNoteWithin(e *imv1.JournalEntry, limit int) string {
	var b strings.Builder
	switch {
	case e.Kind == imv1.EventMembersLeft && e.Reason == imv1.LeaveKicked:
		b.WriteString("Members kicked")
	case e.Kind == imv1.EventMembersLeft:
		b.WriteString("Members left")
	case e.Kind == imv1.EventMembersJoined:
		b.WriteString("Members joined")
	case e.Kind == imv1.EventCreated:
		b.WriteString("Group created")
	case e.Kind == imv1.EventDisbanded:
		b.WriteString("Group disbanded")
	case e.Kind == imv1.EventOwnerChanged:
		b.WriteString("Owner changed")
	case e.Kind == imv1.EventInfoChanged:
		b.WriteString("Group info changed")
	default:
		b.WriteString(string(e.Kind))
	}
	if len(e.Members) > 0 || e.MembersOmitted > 0 {
		b.WriteString(": ")
		b.WriteString(listBounded(e.Members, int(e.MembersOmitted), maxMembersInNote))
	}
	if e.Operator != "" {
		b.WriteString("; by ")
		b.WriteString(e.Operator)
	}
	if e.Message != "" {
		b.WriteString("; ")
		b.WriteString(e.Message)
	}
	suffix := fmt.Sprintf(" (seq %d)", e.Seq)
	return truncateNote(b.String(), limit-len(suffix)) + suffix
}

// announce publishes the new journal entries as Events and advances
// announcedSeq: one Event per reason (journal kind, kicks apart) per
// reconcile, summarising that reason's entries, never one per entry. The
// action is the same for every reconcile, so client-go folds a group's
// repeated Events into series: its memory and API writes grow with the
// groups, not with the entry rate a sender drives (security audit M8). The
// journal and the triggers carry every entry. The Events are sent before
// the status patch that records announcedSeq: a crash in between announces
// those entries once more, the accepted cost of not losing any.
func (r *ChatGroupReconciler) announce(cg *imv1.ChatGroup) {
	a := planAnnouncement(&cg.Status, len(cg.Status.Journal))
	if a.skipped > 0 {
		unannouncedEntries.Add(float64(a.skipped))
		r.recorder.Eventf(cg, nil, corev1.EventTypeWarning, notAnnouncedReason, announceAction,
			"%d journal entries were not announced", a.skipped)
	}
	for _, s := range summarise(a.entries) {
		r.recorder.Eventf(cg, nil, corev1.EventTypeNormal, s.reason, announceAction, "%s", s.note())
	}
	cg.Status.AnnouncedSeq = a.upTo
}

// summary is one reason's entries in one reconcile.
type summary struct {
	reason string
	count  int
	// first is the first entry's seq; latest the last entry.
	first  int64
	latest *imv1.JournalEntry
}

// summarise groups entries by reason, in the order each reason first
// appears.
func summarise(entries []imv1.JournalEntry) []summary {
	var out []summary
	index := map[string]int{}
	for i := range entries {
		e := &entries[i]
		reason := journalReason(e)
		j, ok := index[reason]
		if !ok {
			j = len(out)
			index[reason] = j
			out = append(out, summary{reason: reason, first: e.Seq})
		}
		out[j].count++
		out[j].latest = e
	}
	return out
}

// note is the Event note: the entry itself when it is alone, for example
// "Members joined: alice, bob; by carol (seq 7)", otherwise a count and
// the latest, for example "3 entries from seq 2 to 7; the latest: Members
// joined: alice (seq 7)".
func (s summary) note() string {
	if s.count == 1 {
		return journalNote(s.latest)
	}
	prefix := fmt.Sprintf("%d entries from seq %d to %d; the latest: ", s.count, s.first, s.latest.Seq)
	return prefix + journalNoteWithin(s.latest, maxNoteBytes-len(prefix))
}
