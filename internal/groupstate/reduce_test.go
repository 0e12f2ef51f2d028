package groupstate

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

var testLimits = Limits{MaxMembers: 10000, MaxDeparted: 1000, JournalSize: 64, DedupeWindow: 128}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func ev(kind imv1.EventKind, ms int, users ...string) GroupEvent {
	e := GroupEvent{Provider: imv1.ProviderTencent, GroupID: "g", Kind: kind, EventTime: at(ms)}
	for _, u := range users {
		e.Members = append(e.Members, Member{UserID: u})
	}
	e.Key = fmt.Sprintf("%s/%d/%v", kind, ms, users)
	return e
}

func kick(ms int, users ...string) GroupEvent {
	e := ev(imv1.EventMembersLeft, ms, users...)
	e.Reason, e.Operator = imv1.LeaveKicked, "admin"
	e.Key += "/kick"
	return e
}

func quit(ms int, users ...string) GroupEvent {
	e := ev(imv1.EventMembersLeft, ms, users...)
	e.Reason = imv1.LeaveQuit
	return e
}

func memberIDs(st *imv1.ChatGroupStatus) []string {
	ids := []string{}
	for _, m := range st.Members {
		ids = append(ids, m.UserID)
	}
	return ids
}

func TestReduce(t *testing.T) {
	created := ev(imv1.EventCreated, 0, "bob", "peter")
	created.Owner, created.Name, created.Type = "leckie", "MyFirstGroup", "Public"
	created.Members = append(created.Members, Member{UserID: "leckie", Role: imv1.RoleOwner})
	disband := ev(imv1.EventDisbanded, 50)
	disband.Operator = "leckie"

	tests := []struct {
		name        string
		events      []GroupEvent
		wantMembers []string
		wantResults []ApplyResult
		check       func(g Gomega, st *imv1.ChatGroupStatus)
	}{
		{
			name:        "creates the group with its owner and initial members",
			events:      []GroupEvent{created},
			wantMembers: []string{"bob", "leckie", "peter"},
			wantResults: []ApplyResult{Applied},
			check: func(g Gomega, st *imv1.ChatGroupStatus) {
				g.Expect(st.Name).To(Equal("MyFirstGroup"))
				g.Expect(st.Owner).To(Equal("leckie"))
				g.Expect(st.Type).To(Equal("Public"))
				g.Expect(st.MemberCount).To(Equal(int32(3)))
				g.Expect(st.Members[1].Role).To(Equal(imv1.RoleOwner))
				g.Expect(st.Journal).To(HaveLen(1))
				g.Expect(st.Journal[0].Seq).To(Equal(int64(1)))
				g.Expect(st.LastEvent.Kind).To(Equal(imv1.EventCreated))
			},
		},
		{
			name:        "a duplicate key is reported and changes nothing",
			events:      []GroupEvent{created, ev(imv1.EventMembersJoined, 10, "jared"), ev(imv1.EventMembersJoined, 10, "jared")},
			wantMembers: []string{"bob", "jared", "leckie", "peter"},
			wantResults: []ApplyResult{Applied, Applied, Duplicate},
			check: func(g Gomega, st *imv1.ChatGroupStatus) {
				g.Expect(st.EventsApplied).To(Equal(int64(2)))
				g.Expect(st.RecentKeys).To(HaveLen(2))
			},
		},
		{
			name:        "a kick removes members and records tombstones",
			events:      []GroupEvent{created, kick(20, "bob", "peter")},
			wantMembers: []string{"leckie"},
			wantResults: []ApplyResult{Applied, Applied},
			check: func(g Gomega, st *imv1.ChatGroupStatus) {
				g.Expect(st.Departed).To(HaveLen(2))
				g.Expect(st.Departed[0].Reason).To(Equal(imv1.LeaveKicked))
				g.Expect(st.Departed[0].Operator).To(Equal("admin"))
				g.Expect(st.Journal[1].Members).To(Equal([]string{"bob", "peter"}))
				g.Expect(st.Journal[1].Reason).To(Equal(imv1.LeaveKicked))
			},
		},
		{
			name:        "a join older than the member's departure is stale",
			events:      []GroupEvent{quit(20, "jared"), ev(imv1.EventMembersJoined, 10, "jared")},
			wantMembers: []string{},
			wantResults: []ApplyResult{Applied, Stale},
		},
		{
			name:        "a leave older than the member's join is stale",
			events:      []GroupEvent{ev(imv1.EventMembersJoined, 30, "jared"), quit(20, "jared")},
			wantMembers: []string{"jared"},
			wantResults: []ApplyResult{Applied, Stale},
		},
		{
			name:        "leave wins over a join with the same time, in either order",
			events:      []GroupEvent{quit(20, "a"), ev(imv1.EventMembersJoined, 20, "a"), ev(imv1.EventMembersJoined, 20, "b"), quit(20, "b")},
			wantMembers: []string{},
			wantResults: []ApplyResult{Applied, Stale, Applied, Applied},
		},
		{
			name:   "disband is terminal for older events",
			events: []GroupEvent{created, disband, ev(imv1.EventMembersJoined, 40, "late"), kick(45, "bob")},
			// Without a final roster, older member events still update the
			// frozen membership (R2), unjournaled; newer ones are fenced.
			wantMembers: []string{"late", "leckie", "peter"},
			wantResults: []ApplyResult{Applied, Applied, Stale, Stale},
			check: func(g Gomega, st *imv1.ChatGroupStatus) {
				g.Expect(st.Disbanded).To(BeTrue())
				g.Expect(st.DisbandedAt.Time).To(Equal(at(50)))
			},
		},
		{
			name: "the disband roster replaces what was known",
			events: func() []GroupEvent {
				d := disband
				d.Members = []Member{{UserID: "leckie"}, {UserID: "zoe"}}
				return []GroupEvent{created, d}
			}(),
			wantMembers: []string{"leckie", "zoe"},
			wantResults: []ApplyResult{Applied, Applied},
		},
		{
			name: "a Created event newer than the disband starts a new incarnation",
			events: func() []GroupEvent {
				again := ev(imv1.EventCreated, 100, "new")
				again.Owner = "new"
				return []GroupEvent{created, disband, again}
			}(),
			wantMembers: []string{"new"},
			wantResults: []ApplyResult{Applied, Applied, Applied},
			check: func(g Gomega, st *imv1.ChatGroupStatus) {
				g.Expect(st.Disbanded).To(BeFalse())
				g.Expect(st.DisbandedAt.Time).To(Equal(at(50)), "the last disband time stays as a fence")
				g.Expect(st.Owner).To(Equal("new"))
			},
		},
		{
			name: "owner changes follow the newest event",
			events: func() []GroupEvent {
				o1 := ev(imv1.EventOwnerChanged, 30)
				o1.Owner = "bob"
				o2 := ev(imv1.EventOwnerChanged, 20)
				o2.Owner = "peter"
				return []GroupEvent{created, o1, o2}
			}(),
			wantMembers: []string{"bob", "leckie", "peter"},
			wantResults: []ApplyResult{Applied, Applied, Stale},
			check: func(g Gomega, st *imv1.ChatGroupStatus) {
				g.Expect(st.Owner).To(Equal("bob"))
				g.Expect(st.Members[0].Role).To(Equal(imv1.RoleOwner))
				g.Expect(st.Members[1].Role).To(Equal(imv1.RoleMember), "the old owner is no longer Owner")
			},
		},
		{
			name: "info changes are journaled even when no mirrored field changed",
			events: func() []GroupEvent {
				info := ev(imv1.EventInfoChanged, 30)
				return []GroupEvent{created, info}
			}(),
			wantMembers: []string{"bob", "leckie", "peter"},
			wantResults: []ApplyResult{Applied, Applied},
			check: func(g Gomega, st *imv1.ChatGroupStatus) {
				g.Expect(st.LastSeq).To(Equal(int64(2)))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			st := &imv1.ChatGroupStatus{}
			results := Reduce(st, tt.events, testLimits)
			g.Expect(results).To(Equal(tt.wantResults))
			g.Expect(memberIDs(st)).To(Equal(tt.wantMembers))
			if tt.check != nil {
				tt.check(g, st)
			}
		})
	}
}

func TestReduce_bounds(t *testing.T) {
	g := NewWithT(t)
	lim := Limits{MaxMembers: 3, MaxDeparted: 2, JournalSize: 2, DedupeWindow: 3}
	st := &imv1.ChatGroupStatus{}
	Reduce(st, []GroupEvent{ev(imv1.EventMembersJoined, 1, "a", "b", "c", "d", "e")}, lim)
	g.Expect(st.Members).To(HaveLen(3))
	g.Expect(st.MemberCount).To(Equal(int32(5)), "memberCount stays exact above the bound")

	// d and e are not listed; their leaves still count.
	Reduce(st, []GroupEvent{quit(2, "e"), quit(3, "a"), quit(4, "b")}, lim)
	g.Expect(st.MemberCount).To(Equal(int32(2)))
	g.Expect(memberIDs(st)).To(Equal([]string{"c"}))
	g.Expect(st.Departed).To(HaveLen(2))
	g.Expect(st.Journal).To(HaveLen(2))
	g.Expect(st.Journal[1].Seq).To(Equal(int64(4)))
	g.Expect(st.RecentKeys).To(HaveLen(3))
}

func BenchmarkReduce(b *testing.B) {
	for _, size := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", size), func(b *testing.B) {
			st := &imv1.ChatGroupStatus{}
			ids := make([]string, size)
			for i := range ids {
				ids[i] = fmt.Sprintf("user-%06d", i)
			}
			Reduce(st, []GroupEvent{ev(imv1.EventMembersJoined, 0, ids...)}, testLimits)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				e := ev(imv1.EventMembersJoined, i+1, fmt.Sprintf("new-%d", i))
				cp := st.DeepCopy()
				Reduce(cp, []GroupEvent{e}, testLimits)
			}
		})
	}
}
