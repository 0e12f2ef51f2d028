package groupstate

import (
	"fmt"
	"math/rand/v2"
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
			name:        "disband is terminal for older events",
			events:      []GroupEvent{created, disband, ev(imv1.EventMembersJoined, 40, "late"), kick(45, "bob")},
			wantMembers: []string{"bob", "leckie", "peter"},
			wantResults: []ApplyResult{Applied, Applied, Stale, Stale},
			check: func(g Gomega, st *imv1.ChatGroupStatus) {
				g.Expect(st.Disbanded).To(BeTrue())
				g.Expect(st.DisbandedBy).To(Equal("leckie"))
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

// TestReduce_convergence is a property test: every interleaving, duplication
// and reordering of the same timed events, applied one batch at a time in
// any batch sizes, converges to the same status.
func TestReduce_convergence(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	users := []string{"u1", "u2", "u3", "u4", "u5", "u6"}

	for round := range 300 {
		// A history: distinct times, random membership changes, maybe an
		// owner change and a disband near the end.
		var history []GroupEvent
		created := ev(imv1.EventCreated, 0, users[:2]...)
		created.Owner = users[0]
		history = append(history, created)
		for i := 1; i <= 20; i++ {
			u := users[rng.IntN(len(users))]
			switch rng.IntN(4) {
			case 0, 1:
				history = append(history, ev(imv1.EventMembersJoined, i*10, u))
			case 2:
				history = append(history, quit(i*10, u))
			case 3:
				history = append(history, kick(i*10, u, users[rng.IntN(len(users))]))
			}
		}
		if rng.IntN(2) == 0 {
			o := ev(imv1.EventOwnerChanged, 105)
			o.Owner = users[rng.IntN(len(users))]
			history = append(history, o)
		}
		want := &imv1.ChatGroupStatus{}
		Reduce(want, history, testLimits)
		if rng.IntN(3) == 0 && len(want.Members) > 0 {
			// Tencent's disband carries the owner and the final roster.
			d := ev(imv1.EventDisbanded, 300, memberIDs(want)...)
			d.Owner = want.Owner
			history = append(history, d)
			Reduce(want, history[len(history)-1:], testLimits)
		}

		for variant := range 5 {
			deliveries := append([]GroupEvent(nil), history...)
			for range rng.IntN(len(history)) {
				deliveries = append(deliveries, history[rng.IntN(len(history))]) // duplicates
			}
			rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })

			got := &imv1.ChatGroupStatus{}
			for len(deliveries) > 0 {
				n := 1 + rng.IntN(len(deliveries))
				Reduce(got, deliveries[:n], testLimits)
				deliveries = deliveries[n:]
			}
			if !convergent(got, want) {
				t.Fatalf("round %d variant %d: diverged\nwant members %v owner %q disbanded %v\ngot  members %v owner %q disbanded %v",
					round, variant, memberIDs(want), want.Owner, want.Disbanded, memberIDs(got), got.Owner, got.Disbanded)
			}
		}
	}
}

// convergent compares the order-independent part of two statuses (the
// journal and lastEvent record arrival order by design).
func convergent(a, b *imv1.ChatGroupStatus) bool {
	// joinedAt may differ: a member listed by the disband roster before its
	// older join arrived is stamped with the disband time.
	same := fmt.Sprint(memberIDs(a)) == fmt.Sprint(memberIDs(b)) &&
		fmt.Sprint(a.Departed) == fmt.Sprint(b.Departed) &&
		a.MemberCount == b.MemberCount && a.Owner == b.Owner && a.Name == b.Name &&
		a.Disbanded == b.Disbanded && fmt.Sprint(a.DisbandedAt) == fmt.Sprint(b.DisbandedAt)
	return same
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
