package commit

import (
	"testing"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

func TestTrimJournal(t *testing.T) {
	journal := func(from, to int64) []imv1.JournalEntry {
		var out []imv1.JournalEntry
		for seq := from; seq <= to; seq++ {
			out = append(out, imv1.JournalEntry{Seq: seq, Kind: imv1.EventMembersJoined})
		}
		return out
	}
	tests := []struct {
		name      string
		announced int64
		cursors   []int64
		tail      int
		wantFirst int64
	}{
		{"nothing announced: all kept", 0, nil, 2, 1},
		{"announced, no triggers: the tail stays", 20, nil, 2, 19},
		{"a trigger behind holds its entries", 20, []int64{12, 20}, 2, 13},
		{"partly announced", 15, []int64{20}, 2, 16},
		{"no tail", 20, []int64{20}, 0, 21},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &imv1.ChatGroupStatus{Journal: journal(1, 20), LastSeq: 20, AnnouncedSeq: tt.announced}
			for i, c := range tt.cursors {
				st.Triggers = append(st.Triggers, imv1.TriggerStatus{Name: string(rune('a' + i)), Cursor: c})
			}
			trimJournal(st, tt.tail)
			first := st.LastSeq + 1
			if len(st.Journal) > 0 {
				first = st.Journal[0].Seq
			}
			if first != tt.wantFirst || len(st.Journal) != int(st.LastSeq-first+1) {
				t.Errorf("journal starts at %d with %d entries, want it to start at %d and run to %d",
					first, len(st.Journal), tt.wantFirst, st.LastSeq)
			}
		})
	}
}
