package controllers

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/tools/events"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

func TestPlanAnnouncement(t *testing.T) {
	tests := []struct {
		name        string
		status      imv1.ChatGroupStatus
		announced   int64
		limit       int
		wantSeqs    []int64
		wantSkipped int64
		wantUpTo    int64
	}{
		{name: "announces new entries", status: journalOf(1, 2, 3), announced: 1, limit: 10, wantSeqs: []int64{2, 3}, wantUpTo: 3},
		{name: "announces nothing when up to date", status: journalOf(1, 2, 3), announced: 3, limit: 10, wantUpTo: 3},
		{name: "counts entries that left the ring", status: journalOf(5, 6), announced: 2, limit: 10, wantSeqs: []int64{5, 6}, wantSkipped: 2, wantUpTo: 6},
		{name: "counts entries over the bound", status: journalOf(1, 2, 3, 4), announced: 0, limit: 2, wantSeqs: []int64{3, 4}, wantSkipped: 2, wantUpTo: 4},
		{name: "restarts after a reset status", status: journalOf(1, 2), announced: 9, limit: 10, wantUpTo: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			tt.status.AnnouncedSeq = tt.announced
			a := planAnnouncement(&tt.status, tt.limit)
			var seqs []int64
			for _, e := range a.entries {
				seqs = append(seqs, e.Seq)
			}
			g.Expect(seqs).To(Equal(tt.wantSeqs))
			g.Expect(a.skipped).To(Equal(tt.wantSkipped))
			g.Expect(a.upTo).To(Equal(tt.wantUpTo))
		})
	}
}

func TestJournalNote(t *testing.T) {
	tests := []struct {
		name       string
		entry      imv1.JournalEntry
		wantReason string
		wantNote   string
	}{
		{
			name:       "describes a kick",
			entry:      imv1.JournalEntry{Seq: 3, Kind: imv1.EventMembersLeft, Reason: imv1.LeaveKicked, Operator: "alice", Members: []string{"bob"}},
			wantReason: "MemberKicked", wantNote: "Members kicked: bob; by alice (seq 3)",
		},
		{
			name:       "describes a quit",
			entry:      imv1.JournalEntry{Seq: 4, Kind: imv1.EventMembersLeft, Reason: imv1.LeaveQuit, Members: []string{"carol"}},
			wantReason: "MembersLeft", wantNote: "Members left: carol (seq 4)",
		},
		{
			name: "bounds the members listed",
			entry: imv1.JournalEntry{Seq: 5, Kind: imv1.EventMembersJoined, MembersOmitted: 100,
				Members: []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "u11", "u12"}},
			wantReason: "MembersJoined", wantNote: "Members joined: u1, u2, u3, u4, u5, u6, u7, u8, u9, u10 and 102 more (seq 5)",
		},
		{
			name:       "describes a disband with its message",
			entry:      imv1.JournalEntry{Seq: 6, Kind: imv1.EventDisbanded, Operator: "alice", Message: "bye"},
			wantReason: "Disbanded", wantNote: "Group disbanded; by alice; bye (seq 6)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(journalReason(&tt.entry)).To(Equal(tt.wantReason))
			g.Expect(journalNote(&tt.entry)).To(Equal(tt.wantNote))
		})
	}

	t.Run("fits the events.k8s.io note limit", func(t *testing.T) {
		g := NewWithT(t)
		e := imv1.JournalEntry{Seq: 12345, Kind: imv1.EventInfoChanged, Message: strings.Repeat("é", 1000)}
		note := journalNote(&e)
		g.Expect(len(note)).To(BeNumerically("<=", maxNoteBytes))
		g.Expect(note).To(HaveSuffix("... (seq 12345)"))
		g.Expect([]rune(note)).NotTo(ContainElement('\uFFFD'))
	})
}

// TestAnnounce_M8_summarisesEntriesPerReconcile: a reconcile that finds
// 200 new journal entries sends one Event per reason, with counts, not
// one per entry (which made every entry a distinct Event that client-go
// keeps in memory for minutes).
func TestAnnounce_M8_summarisesEntriesPerReconcile(t *testing.T) {
	g := NewWithT(t)
	cg := &imv1.ChatGroup{}
	kinds := []imv1.JournalEntry{
		{Kind: imv1.EventMembersJoined, Members: []string{"alice"}},
		{Kind: imv1.EventMembersLeft, Reason: imv1.LeaveQuit, Members: []string{"bob"}},
		{Kind: imv1.EventMembersLeft, Reason: imv1.LeaveKicked, Members: []string{"carol"}, Operator: "alice"},
		{Kind: imv1.EventMembersJoined, Members: []string{"dave"}},
	}
	for seq := int64(1); seq <= 200; seq++ {
		e := kinds[(seq-1)%4]
		e.Seq = seq
		cg.Status.Journal = append(cg.Status.Journal, e)
	}
	cg.Status.LastSeq = 200
	recorder := events.NewFakeRecorder(300)
	r := &ChatGroupReconciler{recorder: recorder}
	r.announce(cg)
	close(recorder.Events)
	var sent []string
	for e := range recorder.Events {
		sent = append(sent, e)
	}
	g.Expect(sent).To(Equal([]string{
		"Normal MembersJoined 100 entries from seq 1 to 200; the latest: Members joined: dave (seq 200)",
		"Normal MembersLeft 50 entries from seq 2 to 198; the latest: Members left: bob (seq 198)",
		"Normal MemberKicked 50 entries from seq 3 to 199; the latest: Members kicked: carol; by alice (seq 199)",
	}))
	g.Expect(cg.Status.AnnouncedSeq).To(Equal(int64(200)))

	// A lone entry is told as it is.
	cg.Status.Journal = append(cg.Status.Journal, imv1.JournalEntry{Seq: 201, Kind: imv1.EventDisbanded, Operator: "alice"})
	cg.Status.LastSeq = 201
	recorder = events.NewFakeRecorder(10)
	r.recorder = recorder
	r.announce(cg)
	g.Expect(recorder.Events).To(Receive(Equal("Normal Disbanded Group disbanded; by alice (seq 201)")))
	g.Expect(recorder.Events).NotTo(Receive())
}

// TestSummaryNote_M8_staysWithinTheNoteLimit: the count prefix does not
// push a long entry past the Events API's note limit.
func TestSummaryNote_M8_staysWithinTheNoteLimit(t *testing.T) {
	g := NewWithT(t)
	long := &imv1.JournalEntry{Seq: 9, Kind: imv1.EventInfoChanged, Message: strings.Repeat("x", 2000)}
	note := summary{reason: "InfoChanged", count: 5, first: 1, latest: long}.note()
	g.Expect(len(note)).To(BeNumerically("<=", maxNoteBytes))
	g.Expect(note).To(And(HavePrefix("5 entries from seq 1 to 9; the latest: Group info changed; "), HaveSuffix(" (seq 9)")))
}
