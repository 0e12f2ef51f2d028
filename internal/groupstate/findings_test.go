package groupstate

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

func created(ms int, owner string, users ...string) GroupEvent {
	e := ev(imv1.EventCreated, ms, users...)
	e.Owner = owner
	e.Members = append(e.Members, Member{UserID: owner, Role: imv1.RoleOwner})
	return e
}

func roleChange(ms int, user string, role imv1.MemberRole) GroupEvent {
	e := ev(imv1.EventInfoChanged, ms)
	e.Members = []Member{{UserID: user, Role: role}}
	e.Key += "/" + user + "/" + string(role)
	return e
}

func roleOf(st *imv1.ChatGroupStatus, user string) imv1.MemberRole {
	for _, m := range st.Members {
		if m.UserID == user {
			return m.Role
		}
	}
	return ""
}

func reduceEach(lim Limits, events ...GroupEvent) (*imv1.ChatGroupStatus, []ApplyResult) {
	st := &imv1.ChatGroupStatus{}
	var results []ApplyResult
	for _, e := range events {
		results = append(results, Reduce(st, []GroupEvent{e}, lim)...)
	}
	return st, results
}

func TestReduce_R1_olderDisbandOnlyMovesFence(t *testing.T) {
	g := NewWithT(t)
	st, results := reduceEach(testLimits,
		created(0, "o", "ghost"),
		created(100, "o", "a"), // the next incarnation, stored first
		ev(imv1.EventDisbanded, 50))
	g.Expect(results[2]).To(Equal(Stale), "never journaled: no cleanup trigger runs")
	g.Expect(st.Disbanded).To(BeFalse(), "the live group is not disbanded")
	g.Expect(st.DisbandedAt.Time).To(Equal(at(50)), "the fence moved")
	g.Expect(memberIDs(st)).To(Equal([]string{"a", "o"}), "the old incarnation's ghost is gone")
	g.Expect(Reduce(st, []GroupEvent{ev(imv1.EventMembersJoined, 40, "late")}, testLimits)).To(Equal([]ApplyResult{Stale}))
}

func TestReduce_R2_disbandWithoutRosterKeepsDelayedMemberEvents(t *testing.T) {
	g := NewWithT(t)
	st, results := reduceEach(testLimits,
		created(0, "o", "a", "b"),
		quit(30, "b"),
		ev(imv1.EventDisbanded, 50),          // no roster
		ev(imv1.EventMembersJoined, 20, "c"), // happened before the disband
		ev(imv1.EventMembersJoined, 10, "b")) // older than b's quit
	g.Expect(memberIDs(st)).To(Equal([]string{"a", "c", "o"}))
	g.Expect(results[3:]).To(Equal([]ApplyResult{Stale, Stale}), "the frozen membership is updated, not journaled")
	g.Expect(st.Disbanded).To(BeTrue())
}

func TestReduce_R3_rolesAreLastWriterWins(t *testing.T) {
	for name, order := range map[string][]int{"in order": {0, 1, 2, 3}, "reversed": {3, 2, 1, 0}, "shuffled": {2, 0, 3, 1}} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			history := []GroupEvent{
				created(0, "o", "a"),
				roleChange(10, "a", imv1.RoleAdmin),
				roleChange(20, "a", imv1.RoleMember),
				roleChange(30, "b", imv1.RoleAdmin), // before b's join arrives
			}
			var events []GroupEvent
			for _, i := range order {
				events = append(events, history[i])
			}
			events = append(events, ev(imv1.EventMembersJoined, 25, "b"))
			st, _ := reduceEach(testLimits, events...)
			g.Expect(roleOf(st, "a")).To(Equal(imv1.RoleMember))
			g.Expect(roleOf(st, "b")).To(Equal(imv1.RoleAdmin), "a role change before the join is kept")
			g.Expect(roleOf(st, "o")).To(Equal(imv1.RoleOwner))
		})
	}
}

func TestReduce_R3_ownerDemotionIsOrderIndependent(t *testing.T) {
	g := NewWithT(t)
	transfer := ev(imv1.EventOwnerChanged, 50)
	transfer.Owner = "a"
	inOrder, _ := reduceEach(testLimits, created(0, "o", "a"), transfer)
	reversed, _ := reduceEach(testLimits, transfer, created(0, "o", "a"))
	for _, st := range []*imv1.ChatGroupStatus{inOrder, reversed} {
		g.Expect(st.Owner).To(Equal("a"))
		g.Expect(roleOf(st, "a")).To(Equal(imv1.RoleOwner))
		g.Expect(roleOf(st, "o")).To(Equal(imv1.RoleMember))
	}
}

func TestReduce_C2_oldOwnerTakesNewOwnersRole(t *testing.T) {
	g := NewWithT(t)
	transfer := ev(imv1.EventOwnerChanged, 50)
	transfer.Owner = "a"
	st, _ := reduceEach(testLimits, created(0, "o", "a"), roleChange(10, "a", imv1.RoleAdmin), transfer)
	g.Expect(roleOf(st, "o")).To(Equal(imv1.RoleAdmin), "OpenIM gives the old owner the new owner's previous role level")
	g.Expect(roleOf(st, "a")).To(Equal(imv1.RoleOwner))
}

func TestReduce_R4_sameTimeTiesAreDeterministic(t *testing.T) {
	g := NewWithT(t)
	rename := func(name string) GroupEvent {
		e := ev(imv1.EventInfoChanged, 10)
		e.Name, e.Key = name, "rename/"+name
		return e
	}
	owner := func(o string) GroupEvent {
		e := ev(imv1.EventOwnerChanged, 10)
		e.Owner, e.Key = o, "owner/"+o
		return e
	}
	ab, _ := reduceEach(testLimits, rename("alpha"), rename("beta"), owner("x"), owner("y"))
	ba, _ := reduceEach(testLimits, owner("y"), owner("x"), rename("beta"), rename("alpha"))
	g.Expect(ab.Name).To(Equal(ba.Name))
	g.Expect(ab.Owner).To(Equal(ba.Owner))
	g.Expect(ab.Name).To(Equal("beta"))
	g.Expect(ab.Owner).To(Equal("y"))
}

func TestReduce_R5_tombstonesExpireByAgeNotCount(t *testing.T) {
	g := NewWithT(t)
	lim := testLimits
	lim.TombstoneTTL = time.Minute
	var events []GroupEvent
	for i := range 1500 { // more than MaxDeparted used to keep
		events = append(events, quit(i, fmt.Sprintf("u%04d", i)))
	}
	st, _ := reduceEach(Limits{MaxMembers: 10000, MaxDeparted: 5000, JournalSize: 64, DedupeWindow: 128, TombstoneTTL: time.Minute}, events...)
	g.Expect(st.Departed).To(HaveLen(1500), "recent tombstones are all kept")
	Reduce(st, []GroupEvent{ev(imv1.EventMembersJoined, 0, "u0000")}, lim)
	g.Expect(memberIDs(st)).To(BeEmpty(), "a stale join finds its tombstone")
	Reduce(st, []GroupEvent{quit(2*60*1000, "late")}, lim)
	g.Expect(st.Departed).To(HaveLen(1), "tombstones older than the TTL are gone")
}

func TestReduce_R6_redeliveryBeyondWindowIsStale(t *testing.T) {
	g := NewWithT(t)
	rename := ev(imv1.EventInfoChanged, 5)
	rename.Name = "g2"
	batch := []GroupEvent{created(0, "o", "a"), rename, roleChange(6, "a", imv1.RoleAdmin), roleChange(7, "a", imv1.RoleMember)}
	for i := range testLimits.DedupeWindow {
		batch = append(batch, ev(imv1.EventMembersJoined, 10+i, fmt.Sprintf("u%03d", i)))
	}
	batch = append(batch, batch[0], batch[1], batch[2]) // redelivered past the window
	st := &imv1.ChatGroupStatus{}
	r := Reduce(st, batch, testLimits)
	g.Expect(r[len(r)-3:]).To(Equal([]ApplyResult{Stale, Stale, Stale}))
	g.Expect(st.LastSeq).To(Equal(int64(len(batch)-3)), "nothing journaled twice")
	g.Expect(roleOf(st, "a")).To(Equal(imv1.RoleMember), "the old role change does not win")
}

func untimed(e GroupEvent, arrivalMS int) GroupEvent {
	e.Untimed, e.EventTime = true, at(arrivalMS)
	e.Key = fmt.Sprintf("%s/%v/%s", e.Kind, e.Members, e.Reason) // content only
	return e
}

func TestReduce_K1_untimedRejoinIsApplied(t *testing.T) {
	g := NewWithT(t)
	join := ev(imv1.EventMembersJoined, 0, "jared")
	st, results := reduceEach(testLimits, untimed(join, 1000), untimed(quit(0, "jared"), 2000), untimed(join, 3000))
	g.Expect(results).To(Equal([]ApplyResult{Applied, Applied, Applied}))
	g.Expect(memberIDs(st)).To(Equal([]string{"jared"}))
	// A retry of the same event (the same arrival time) is a duplicate.
	g.Expect(Reduce(st, []GroupEvent{untimed(join, 3000)}, testLimits)).To(Equal([]ApplyResult{Duplicate}))
	// So is a repeat within the window that nothing undid.
	g.Expect(Reduce(st, []GroupEvent{untimed(join, 4000)}, testLimits)).To(Equal([]ApplyResult{Duplicate}))
	// Past the window, a repeat is a new event (here changing nothing).
	g.Expect(Reduce(st, []GroupEvent{untimed(join, 3000+61000)}, testLimits)).NotTo(Equal([]ApplyResult{Duplicate}))
}

func TestReduce_K2_untimedRepeatedKickAndDismissAreApplied(t *testing.T) {
	g := NewWithT(t)
	k := kick(0, "u2")
	st, results := reduceEach(testLimits, untimed(created(0, "u1", "u2"), 1000), untimed(k, 2000),
		untimed(ev(imv1.EventMembersJoined, 0, "u2"), 3000), untimed(k, 4000))
	g.Expect(results[3]).To(Equal(Applied))
	g.Expect(memberIDs(st)).To(Equal([]string{"u1"}))

	dismiss := ev(imv1.EventDisbanded, 0)
	c := created(0, "u1")
	st, results = reduceEach(testLimits, untimed(c, 1000), untimed(dismiss, 2000), untimed(c, 3000), untimed(dismiss, 4000))
	g.Expect(results).To(Equal([]ApplyResult{Applied, Applied, Applied, Applied}))
	g.Expect(st.Disbanded).To(BeTrue())
}

func TestReduce_H3_statusStaysWithinByteBudget(t *testing.T) {
	g := NewWithT(t)
	lim := testLimits
	lim.MaxStatusBytes = 256 << 10
	id := func(p string, i int) string { return p + strings.Repeat("x", 200) + fmt.Sprint(i) }
	var users []string
	for i := range 2000 {
		users = append(users, id("m", i))
	}
	st := &imv1.ChatGroupStatus{}
	join := ev(imv1.EventMembersJoined, 0, users...)
	join.Key = join.CanonicalKey("")
	Reduce(st, []GroupEvent{join}, lim)
	for i := range 64 {
		q := quit(10+i, users[i*3:i*3+3]...)
		q.Key = q.CanonicalKey("")
		Reduce(st, []GroupEvent{q}, lim)
	}
	g.Expect(statusBytes(st)).To(BeNumerically("<=", lim.MaxStatusBytes))
	written, err := json.Marshal(st)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(len(written)).To(BeNumerically("<=", lim.MaxStatusBytes), "the estimate is never below the real size")
	g.Expect(st.MemberCount).To(Equal(int32(2000-64*3)), "memberCount stays exact")
	g.Expect(len(st.Members)).To(BeNumerically("<", int(st.MemberCount)), "the member list is truncated")
	g.Expect(st.Journal[0].MembersOmitted).To(BeNumerically(">", 0), "journal member lists go first")
}

func TestReduce_C3_keepsJoinTypeKickReasonAndProfile(t *testing.T) {
	g := NewWithT(t)
	s := func(v string) *string { return &v }
	join := ev(imv1.EventMembersJoined, 10, "a")
	join.JoinType = "Invited"
	k := kick(20, "a")
	k.Message = "spamming"
	notice, intro := ev(imv1.EventInfoChanged, 30), ev(imv1.EventInfoChanged, 25)
	notice.Notification, notice.Key = s("new notice"), "notice"
	intro.Introduction, intro.Notification, intro.Key = s("about us"), s("old notice"), "intro"
	for i, order := range [][]GroupEvent{{join, k, notice, intro}, {intro, notice, k, join}} {
		st, _ := reduceEach(testLimits, order...)
		if i == 0 {
			g.Expect(st.Journal).To(ContainElement(HaveField("JoinType", "Invited")))
		}
		g.Expect(st.Departed).To(ConsistOf(HaveField("Message", "spamming")))
		g.Expect(st.Notification.Value).To(Equal("new notice"), "last-writer-wins per field")
		g.Expect(st.Introduction.Value).To(Equal("about us"))
	}
}
