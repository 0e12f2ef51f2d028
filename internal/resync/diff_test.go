package resync

import (
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

var (
	spec = imv1.ChatGroupSpec{Provider: imv1.ProviderTencent, AppID: "1400000000", GroupID: "@TGS#g"}
	at   = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
)

// status is a group owned by "o".
func status(members ...string) *imv1.ChatGroupStatus {
	const owner = "o"
	st := &imv1.ChatGroupStatus{Owner: owner, Name: "g", Type: "Public", EventsApplied: 1}
	for _, m := range members {
		role := imv1.RoleMember
		if m == owner {
			role = imv1.RoleOwner
		}
		st.Members = append(st.Members, imv1.GroupMember{UserID: m, Role: role})
	}
	st.MemberCount = int32(len(members))
	return st
}

func snapshot(owner string, members ...string) provider.GroupSnapshot {
	s := provider.GroupSnapshot{GroupID: "@TGS#g", Owner: owner, Name: "g", Type: "Public", MembersComplete: true}
	for _, m := range members {
		role := imv1.RoleMember
		if m == owner {
			role = imv1.RoleOwner
		}
		s.Members = append(s.Members, groupstate.Member{UserID: m, Role: role})
	}
	return s
}

func kinds(evs []groupstate.GroupEvent) []imv1.EventKind {
	out := make([]imv1.EventKind, len(evs))
	for i, ev := range evs {
		out[i] = ev.Kind
	}
	return out
}

func TestDiff(t *testing.T) {
	gone := provider.GroupSnapshot{GroupID: "@TGS#g", Gone: true}
	partial := snapshot("o", "o")
	partial.MembersComplete = false
	truncated := status("o", "a")
	truncated.MemberCount = 5
	disbanded := status("o")
	disbanded.Disbanded, disbanded.DisbandedAt = true, &metav1.MicroTime{Time: at.Add(-time.Hour)}
	renamed := snapshot("o", "o")
	renamed.Name = "new"
	cases := []struct {
		name string
		st   *imv1.ChatGroupStatus
		snap provider.GroupSnapshot
		want []imv1.EventKind
	}{
		{"in sync", status("o", "a"), snapshot("o", "o", "a"), nil},
		{"join and leave", status("o", "a"), snapshot("o", "o", "b"), []imv1.EventKind{imv1.EventMembersJoined, imv1.EventMembersLeft}},
		{"owner change moves roles", status("o", "a"), snapshot("a", "o", "a"), []imv1.EventKind{imv1.EventInfoChanged, imv1.EventOwnerChanged}},
		{"renamed", status("o"), renamed, []imv1.EventKind{imv1.EventInfoChanged}},
		{"gone", status("o"), gone, []imv1.EventKind{imv1.EventDisbanded}},
		{"gone and already disbanded", disbanded, gone, nil},
		{"never seen and gone", &imv1.ChatGroupStatus{}, gone, nil},
		{"discovered", &imv1.ChatGroupStatus{}, snapshot("o", "o", "a"), []imv1.EventKind{imv1.EventCreated}},
		{"disbanded but alive: new incarnation", disbanded, snapshot("o", "o"), []imv1.EventKind{imv1.EventCreated}},
		{"members shifted while read: members untouched", status("o", "a"), partial, nil},
		{"status lists part of the members: members untouched", truncated, snapshot("o", "o"), nil},
		{"failed snapshot changes nothing", status("o"), provider.GroupSnapshot{GroupID: "@TGS#g", Gone: true, Err: errors.New("boom")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs := Diff(spec, tc.st, tc.snap, at)
			got := kinds(evs)
			if len(got) != len(tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("events %v, want %v", got, tc.want)
				}
			}
			for _, ev := range evs {
				if !ev.EventTime.Equal(at) || ev.Reason != imv1.LeaveResync || ev.Command != Command || ev.Key == "" {
					t.Errorf("event %+v: want the snapshot time, reason Resync and a key", ev)
				}
				if err := ev.Validate(); err != nil {
					t.Errorf("event %s invalid: %v", ev.Kind, err)
				}
			}
		})
	}
}

// Resync events converge with the reducer: applying the diff makes the
// status equal the snapshot, and applying it again changes nothing.
func TestDiff_convergesThroughReduce(t *testing.T) {
	st := status("o", "a", "b")
	st.Journal = nil
	snap := snapshot("c", "o", "b", "c", "d")
	lim := groupstate.Limits{MaxMembers: 100, MaxDeparted: 100, JournalSize: 64, DedupeWindow: 128}
	groupstate.Reduce(st, Diff(spec, st, snap, at), lim)
	var got []string
	for _, m := range st.Members {
		got = append(got, m.UserID+"/"+string(m.Role))
	}
	want := []string{"b/Member", "c/Owner", "d/Member", "o/Member"}
	if len(got) != len(want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("members %v, want %v", got, want)
		}
	}
	if st.Owner != "c" {
		t.Fatalf("owner %q", st.Owner)
	}
	if again := Diff(spec, st, snap, at.Add(time.Minute)); len(again) != 0 {
		t.Fatalf("second diff: %v", kinds(again))
	}
}
