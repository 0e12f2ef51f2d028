package groupstate

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// propertyRounds is the number of histories TestReduce_convergence
// generates: PROPERTY_ROUNDS overrides it (make fuzz runs more).
func propertyRounds(t *testing.T) int {
	if s := os.Getenv("PROPERTY_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("PROPERTY_ROUNDS: %v", err)
		}
		return n
	}
	return 10000
}

var propUsers = []string{"u1", "u2", "u3", "u4", "u5", "u6"}

// historyGen builds one random timed history of a group.
type historyGen struct {
	rng     *rand.Rand
	events  []GroupEvent
	lim     Limits
	ties    bool
	nextSeq int
}

func (h *historyGen) time(i int) int {
	if h.ties {
		return (i / 2) * 10 // pairs of events share a time
	}
	return i * 10
}

func (h *historyGen) add(e GroupEvent) {
	h.nextSeq++
	e.Key = fmt.Sprintf("%s#%d", e.Key, h.nextSeq) // distinct events, distinct keys
	h.events = append(h.events, e)
}

// step adds one random event at time ms: membership changes, renames, role
// changes (u2..u4 only) and owner transfers (to u5 or u6, who never get a
// role change), so that the old owner's role is well defined.
func (h *historyGen) step(ms int) {
	u := propUsers[h.rng.IntN(len(propUsers))]
	switch h.rng.IntN(8) {
	case 0, 1:
		h.add(ev(imv1.EventMembersJoined, ms, u))
	case 2:
		h.add(quit(ms, u))
	case 3:
		h.add(kick(ms, u, propUsers[h.rng.IntN(len(propUsers))]))
	case 4:
		e := ev(imv1.EventInfoChanged, ms)
		e.Name = fmt.Sprintf("name-%d", h.rng.IntN(3))
		h.add(e)
	case 5, 6:
		e := ev(imv1.EventInfoChanged, ms)
		role := []imv1.MemberRole{imv1.RoleAdmin, imv1.RoleMember}[h.rng.IntN(2)]
		e.Members = []Member{{UserID: propUsers[1+h.rng.IntN(3)], Role: role}}
		h.add(e)
	case 7:
		e := ev(imv1.EventOwnerChanged, ms)
		e.Owner = propUsers[4+h.rng.IntN(2)]
		h.add(e)
	}
}

func (h *historyGen) created(ms int) {
	c := ev(imv1.EventCreated, ms, "u1", "u2")
	c.Owner, c.Name = "u1", "first"
	c.Members[0].Role = imv1.RoleOwner
	h.add(c)
}

// disband adds a disband at ms, with the final roster (as reduced in order
// so far) when withRoster.
func (h *historyGen) disband(ms int, withRoster bool) {
	d := ev(imv1.EventDisbanded, ms)
	if withRoster {
		// Tencent's disband carries the final roster, the owner and the
		// name.
		st := &imv1.ChatGroupStatus{}
		Reduce(st, h.events, h.lim)
		for _, id := range memberIDs(st) {
			d.Members = append(d.Members, Member{UserID: id})
		}
		d.Owner, d.Name = st.Owner, st.Name
	}
	h.add(d)
}

// generate builds a history of one of the shapes that found bugs: plain,
// roster-less disband, disband with roster, re-create after disband (with
// or without roster).
func (h *historyGen) generate() {
	h.created(0)
	shape := h.rng.IntN(5)
	for i := 1; i <= 24; i++ {
		ms := h.time(i)
		switch {
		case i == 12 && shape >= 1:
			h.disband(ms+5, shape%2 == 0)
		case i == 14 && shape >= 3:
			h.created(ms + 5) // a new incarnation
		}
		h.step(ms)
	}
	if shape == 0 && h.rng.IntN(2) == 0 {
		h.disband(1000, true)
	}
}

// deliver returns the history delivered with duplicates, in an order where
// each event is delayed by less than maxDelay (any order when zero).
func deliver(rng *rand.Rand, history []GroupEvent, maxDelay time.Duration) []GroupEvent {
	out := slices.Clone(history)
	for range rng.IntN(len(history)) {
		out = append(out, history[rng.IntN(len(history))])
	}
	if maxDelay == 0 {
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
	arrival := make(map[int]time.Time, len(out))
	idx := make([]int, len(out))
	for i := range out {
		idx[i] = i
		arrival[i] = out[i].EventTime.Add(time.Duration(rng.Int64N(int64(maxDelay))))
	}
	sort.SliceStable(idx, func(a, b int) bool { return arrival[idx[a]].Before(arrival[idx[b]]) })
	sorted := make([]GroupEvent, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted
}

// reduceInBatches applies deliveries in random batch sizes.
func reduceInBatches(rng *rand.Rand, deliveries []GroupEvent, lim Limits) *imv1.ChatGroupStatus {
	got := &imv1.ChatGroupStatus{}
	for len(deliveries) > 0 {
		n := 1 + rng.IntN(len(deliveries))
		Reduce(got, deliveries[:n], lim)
		deliveries = deliveries[n:]
	}
	return got
}

// TestReduce_convergence is the property test: every interleaving,
// duplication and reordering of the same timed events, applied in any
// batch sizes, converges to the same status. Histories include re-creates
// after a disband (R1), roster-less disbands (R2), role and owner changes
// (R3, C2), same-time events (R4), renames and info changes (R6) and, with
// a short tombstone TTL and a bounded delivery delay, tombstone expiry
// (R5).
func TestReduce_convergence(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rounds := propertyRounds(t)
	for round := range rounds {
		h := &historyGen{rng: rng, lim: testLimits, ties: round%3 == 0}
		maxDelay := time.Duration(0)
		if round%4 == 1 {
			// Tombstones expire 60 ms after the newest event; no event is
			// delivered more than 50 ms late.
			h.lim.TombstoneTTL, maxDelay = 60*time.Millisecond, 50*time.Millisecond
		}
		h.generate()
		want := &imv1.ChatGroupStatus{}
		Reduce(want, h.events, h.lim)
		for variant := range 3 {
			got := reduceInBatches(rng, deliver(rng, h.events, maxDelay), h.lim)
			if diff := divergence(got, want, !want.FinalRoster); diff != "" {
				for _, e := range h.events {
					t.Log(e.Kind, e.EventTime.Sub(t0), e.Members, e.Owner, e.Name, e.Reason)
				}
				t.Fatalf("round %d variant %d: %s", round, variant, diff)
			}
		}
	}
}

// divergence compares the order-independent part of two statuses (the
// journal and lastEvent record arrival order by design, and joinedAt may
// be stamped by a disband roster) and describes the first difference.
// Roles are compared when withRoles: after a disband with a final roster,
// the roles of members the roster named before their join arrived are not
// known (the roster carries none).
func divergence(got, want *imv1.ChatGroupStatus, withRoles bool) string {
	roles := func(st *imv1.ChatGroupStatus) string {
		var s string
		for _, m := range st.Members {
			s += m.UserID + " "
			if withRoles {
				s += string(m.Role) + " "
			}
		}
		return s
	}
	departed := func(st *imv1.ChatGroupStatus) string {
		var s string
		for _, d := range st.Departed {
			s += fmt.Sprintf("%s:%s:%s:%s ", d.UserID, d.Reason, d.Operator, d.At.Sub(t0))
		}
		return s
	}
	for _, c := range []struct{ what, got, want string }{
		{"members", roles(got), roles(want)},
		{"departed", departed(got), departed(want)},
		{"memberCount", fmt.Sprint(got.MemberCount), fmt.Sprint(want.MemberCount)},
		{"owner", got.Owner, want.Owner},
		{"name", got.Name, want.Name},
		{"disbanded", fmt.Sprint(got.Disbanded), fmt.Sprint(want.Disbanded)},
		{"disbandedAt", fmt.Sprint(got.DisbandedAt), fmt.Sprint(want.DisbandedAt)},
	} {
		if c.got != c.want {
			return fmt.Sprintf("%s: got %q, want %q", c.what, c.got, c.want)
		}
	}
	return ""
}

func hasLaterQuit(actions []GroupEvent, join GroupEvent) bool {
	for _, a := range actions {
		if a.Kind == imv1.EventMembersLeft && a.Members[0] == join.Members[0] && a.EventTime.After(join.EventTime) {
			return true
		}
	}
	return false
}

// TestReduce_untimedRetries is the property for events without a platform
// time (OpenIM, Tencent without EventTime): ordered by arrival, with the
// committer's retries of an event (same arrival time) and repeats of the
// same action later (same key, new arrival time), the status is the one
// the distinct actions give: a retry is a duplicate, a repeat after an
// event that undid its effect is applied (K1, K2).
func TestReduce_untimedRetries(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range propertyRounds(t) / 10 {
		var actions, deliveries []GroupEvent
		for i := range 20 {
			u := propUsers[rng.IntN(3)]
			e := ev(imv1.EventMembersJoined, i*1000, u)
			if rng.IntN(2) == 0 {
				e = quit(i*1000, u)
			}
			e.Untimed = true
			e.Key = fmt.Sprintf("%s/%v/%s", e.Kind, e.Members, e.Reason) // content only
			actions = append(actions, e)
			deliveries = append(deliveries, e)
			for range rng.IntN(2) {
				// A committer retry of an earlier action, arriving later.
				deliveries = append(deliveries, actions[rng.IntN(len(actions))])
			}
		}
		want, got := &imv1.ChatGroupStatus{}, &imv1.ChatGroupStatus{}
		Reduce(want, actions, testLimits)
		Reduce(got, deliveries, testLimits)
		for _, a := range actions {
			// Every join is in effect unless a later quit undid it.
			if a.Kind == imv1.EventMembersJoined && !slices.Contains(memberIDs(want), a.Members[0].UserID) &&
				!hasLaterQuit(actions, a) {
				t.Fatalf("round %d: the join of %s at %s was lost", round, a.Members[0].UserID, a.EventTime.Sub(t0))
			}
		}
		if diff := divergence(got, want, true); diff != "" {
			t.Fatalf("round %d: %s", round, diff)
		}
	}
}
