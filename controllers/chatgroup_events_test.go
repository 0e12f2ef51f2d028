package controllers

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"

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
