package groupstate

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// ApplyResult is what applying one event did to a group.
type ApplyResult string

const (
	// Applied means the event changed the group and was journaled.
	Applied ApplyResult = "applied"
	// Duplicate means the event's key was already in the dedupe window.
	Duplicate ApplyResult = "duplicate"
	// Stale means the event was older than the state it would change (or
	// changed nothing); it was recorded for deduplication only.
	Stale ApplyResult = "stale"
)

// Limits bound the size of a ChatGroup's status. Zero durations and byte
// budgets take the defaults below.
type Limits struct {
	// MaxMembers bounds status.members; memberCount stays exact above it.
	MaxMembers int
	// MaxDeparted bounds status.departed (the tombstones). Tombstones
	// expire by age (TombstoneTTL); this count is only a last resort.
	MaxDeparted int
	// JournalSize bounds status.journal.
	JournalSize int
	// DedupeWindow bounds status.recentKeys.
	DedupeWindow int
	// UntimedDedupe is how long the key of an event without a platform
	// time can mark a repeat as a duplicate.
	UntimedDedupe time.Duration
	// TombstoneTTL is how long a departure is kept as a tombstone, counted
	// back from the newest event time the group has seen. It must exceed
	// the longest delay with which an event can still arrive.
	TombstoneTTL time.Duration
	// MaxStatusBytes is the byte budget of the status the reducer writes:
	// journal member lists, then departures, then members are shrunk to
	// stay under it, so that a write always fits etcd's request limit.
	MaxStatusBytes int
	// MembersElsewhere says the member list is not stored in the status
	// (the committer keeps a large group's members in member slices): the
	// budget neither counts nor shrinks it. MaxMembers still applies.
	MembersElsewhere bool
}

// Defaults for zero Limits fields.
const (
	DefaultUntimedDedupe  = time.Minute
	DefaultTombstoneTTL   = time.Hour
	DefaultMaxStatusBytes = 1 << 20
)

func (l Limits) untimedDedupe() time.Duration {
	return cmp0(l.UntimedDedupe, DefaultUntimedDedupe)
}

func (l Limits) tombstoneTTL() time.Duration { return cmp0(l.TombstoneTTL, DefaultTombstoneTTL) }

func (l Limits) maxStatusBytes() int { return cmp0(l.MaxStatusBytes, DefaultMaxStatusBytes) }

func cmp0[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// maxJournalMembers bounds the users listed in one journal entry.
const maxJournalMembers = 256

// groupState is the working form of a ChatGroupStatus while a batch of
// events is applied: maps instead of sorted lists.
type groupState struct {
	st       *imv1.ChatGroupStatus
	members  map[string]imv1.GroupMember
	departed map[string]imv1.Departure
	// overflow counts members that are not listed because of MaxMembers.
	overflow int32
	keys     map[string]keyRecord
	// newest is the newest event time seen; tombstones expire by it.
	newest time.Time
}

func loadGroupState(st *imv1.ChatGroupStatus) *groupState {
	g := &groupState{
		st:       st,
		members:  make(map[string]imv1.GroupMember, len(st.Members)),
		departed: make(map[string]imv1.Departure, len(st.Departed)),
		keys:     make(map[string]keyRecord, len(st.RecentKeys)),
	}
	for _, m := range st.Members {
		if m.RoleTime == nil {
			m.RoleTime = m.JoinedAt // stored compactly: see store
		}
		g.members[m.UserID] = m
	}
	for _, d := range st.Departed {
		g.departed[d.UserID] = d
	}
	for _, k := range st.RecentKeys {
		key, rec := parseKey(k)
		g.keys[key] = rec
	}
	g.overflow = max(st.MemberCount-int32(len(st.Members)), 0)
	if st.LastEvent != nil {
		g.newest = st.LastEvent.Time.Time
	}
	return g
}

// Reduce applies events, in order, to a ChatGroup status and reports what
// each did. The status is changed in place. Every event must have its
// EventTime and Key set. Reduce is deterministic and order-independent for
// timed events: any interleaving, duplication or reordering of the same
// events yields the same members, roles, departures, owner, name and
// disband state (as long as the bounds are not exceeded). See
// docs/delivery.md for the exact rules.
func Reduce(st *imv1.ChatGroupStatus, events []GroupEvent, lim Limits) []ApplyResult {
	g := loadGroupState(st)
	results := make([]ApplyResult, len(events))
	for i := range events {
		results[i] = g.apply(&events[i], lim)
	}
	g.store(lim)
	return results
}

func (g *groupState) apply(ev *GroupEvent, lim Limits) ApplyResult {
	if g.isDuplicate(ev, lim) {
		return Duplicate
	}
	g.rememberKey(ev, lim.DedupeWindow)
	if ev.EventTime.After(g.newest) {
		g.newest = ev.EventTime
	}
	if !g.change(ev) {
		return Stale
	}
	g.journal(ev, lim.JournalSize)
	return Applied
}

// change applies one event's effect and reports whether it is to be
// journaled: whether it changed the group, and was not fenced by a
// disband.
func (g *groupState) change(ev *GroupEvent) bool {
	st := g.st
	if st.DisbandedAt != nil && !ev.EventTime.After(st.DisbandedAt.Time) {
		// Older than the last disband. Without a final roster, the frozen
		// membership and profile still take older events of the disbanded
		// incarnation (last-writer-wins), so that they do not depend on
		// arrival order; they are never journaled.
		if st.Disbanded && !st.FinalRoster && ev.Kind != imv1.EventDisbanded {
			g.changeLive(ev)
		}
		return false
	}
	return g.changeLive(ev)
}

func (g *groupState) changeLive(ev *GroupEvent) bool {
	t := ev.EventTime
	switch ev.Kind {
	case imv1.EventCreated:
		return g.create(ev)
	case imv1.EventMembersJoined:
		changed := false
		for _, m := range ev.Members {
			changed = g.join(m, t) || changed
		}
		return g.setType(ev.Type) || changed
	case imv1.EventMembersLeft:
		changed := false
		for _, m := range ev.Members {
			changed = g.leave(m.UserID, ev, t) || changed
		}
		return changed
	case imv1.EventDisbanded:
		return g.disband(ev, t)
	case imv1.EventInfoChanged:
		return g.info(ev, t)
	case imv1.EventOwnerChanged:
		return g.setOwner(ev.Owner, t)
	}
	return false
}

// create applies a Created event: only the newest Created counts (a
// redelivered or older one is stale), and one newer than a disband starts
// a new incarnation.
func (g *groupState) create(ev *GroupEvent) bool {
	st, t := g.st, ev.EventTime
	if st.CreatedTime != nil && !t.After(st.CreatedTime.Time) {
		return false
	}
	if st.Disbanded && st.DisbandedAt.Time.Before(t) {
		g.reincarnate()
	}
	st.CreatedTime = microTime(t)
	g.setProfile(ev)
	for _, m := range ev.Members {
		g.join(m, t)
	}
	return true
}

// info applies an InfoChanged event: role changes (with members) or a
// profile change (without), each last-writer-wins by its own time.
func (g *groupState) info(ev *GroupEvent, t time.Time) bool {
	changed := false
	for _, m := range ev.Members {
		changed = g.changeRole(m, t) || changed
	}
	changed = g.setProfile(ev) || changed
	if len(ev.Members) == 0 && (g.st.InfoTime == nil || t.After(g.st.InfoTime.Time)) {
		// Journaled even when no field we mirror changed (for example a
		// new notice), so that triggers on InfoChanged still fire; but
		// only once.
		g.st.InfoTime = microTime(t)
		changed = true
	}
	return changed
}

// reincarnate starts a new life of a group ID after a disband: everything
// from before the disband is forgotten, except the disband time itself.
// Events newer than the disband that arrived before this Created event
// belong to the new incarnation and are kept.
func (g *groupState) reincarnate() {
	g.purge(g.st.DisbandedAt.Time)
	g.overflow = 0
	g.st.Disbanded = false
	g.st.FinalRoster = false
}

// purge forgets members and tombstones not newer than cut.
func (g *groupState) purge(cut time.Time) {
	for id, m := range g.members {
		if !since(m).After(cut) {
			delete(g.members, id)
		}
	}
	for id, d := range g.departed {
		if !d.At.After(cut) {
			delete(g.departed, id)
		}
	}
}

// newer reports whether a value set at t wins over the current one set at
// cur: a later time wins, and at the same time the greater value, so that
// the result does not depend on arrival order.
func newer(t time.Time, cur *metav1.MicroTime, v, curV string) bool {
	switch {
	case cur == nil || t.After(cur.Time):
		return true
	case t.Equal(cur.Time):
		return v > curV
	}
	return false
}

func (g *groupState) setProfile(ev *GroupEvent) bool {
	st, changed := g.st, false
	if ev.Name != "" && newer(ev.EventTime, st.NameTime, ev.Name, st.Name) {
		changed = st.Name != ev.Name
		st.Name = ev.Name
		st.NameTime = microTime(ev.EventTime)
	}
	changed = g.setType(ev.Type) || changed
	for _, f := range []struct {
		dst **imv1.ProfileField
		v   *string
	}{{&st.Introduction, ev.Introduction}, {&st.Notification, ev.Notification}, {&st.FaceURL, ev.FaceURL}} {
		changed = setProfileField(f.dst, f.v, ev.EventTime) || changed
	}
	if ev.Owner != "" {
		changed = g.setOwner(ev.Owner, ev.EventTime) || changed
	}
	return changed
}

// setProfileField sets a profile field to v at t, last-writer-wins; nil
// leaves it unchanged.
func setProfileField(dst **imv1.ProfileField, v *string, t time.Time) bool {
	if v == nil {
		return false
	}
	cur := *dst
	if cur != nil && !newer(t, &cur.Time, *v, cur.Value) {
		return false
	}
	*dst = &imv1.ProfileField{Value: *v, Time: metav1.NewMicroTime(t)}
	return cur == nil || cur.Value != *v
}

func (g *groupState) setType(typ string) bool {
	if typ == "" || typ == g.st.Type {
		return false
	}
	g.st.Type = typ
	return true
}

// setOwner makes owner the owner at t, last-writer-wins. The event
// proves the new owner a member with the Owner role at t. The old owner,
// as far as known, takes the new owner's previous role (OpenIM's transfer
// does exactly that); the old owner's role time is left alone, since the
// old owner may have left since.
func (g *groupState) setOwner(owner string, t time.Time) bool {
	st := g.st
	if owner == "" {
		return false
	}
	if !newer(t, st.OwnerTime, owner, st.Owner) {
		// Superseded as owner, but still proven a member at t.
		g.changeRole(Member{UserID: owner, Role: imv1.RoleOwner}, t)
		return false
	}
	old := st.Owner
	st.Owner = owner
	st.OwnerTime = microTime(t)
	prev := imv1.RoleMember
	if m, ok := g.members[owner]; ok && m.Role != "" && m.Role != imv1.RoleOwner {
		prev = m.Role
	}
	g.changeRole(Member{UserID: owner, Role: imv1.RoleOwner}, t)
	if old == owner {
		return false
	}
	if m, ok := g.members[old]; ok && old != "" {
		m.Role = prev
		g.members[old] = m
	}
	return true
}

func (g *groupState) disband(ev *GroupEvent, t time.Time) bool {
	st := g.st
	if st.CreatedTime != nil && t.Before(st.CreatedTime.Time) {
		// The disband of an older incarnation, arriving after the newer
		// Created: it only moves the fence and forgets that incarnation.
		st.DisbandedAt = microTime(t)
		g.purge(t)
		return false
	}
	st.Disbanded = true
	st.DisbandedAt = microTime(t)
	st.FinalRoster = len(ev.Members) > 0
	g.setProfile(ev)
	if !st.FinalRoster {
		// Without a final roster (OpenIM usually, Tencent communities) the
		// membership stays as received, and tombstones are kept so that
		// older member events still converge on it.
		return true
	}
	// The platform sent the final roster: it replaces what we knew as of
	// t, whatever order the older events arrived in, and every older
	// event is fenced off from now on.
	for id, d := range g.departed {
		if !d.At.After(t) {
			delete(g.departed, id)
		}
	}
	roster := make(map[string]bool, len(ev.Members))
	for _, m := range ev.Members {
		roster[m.UserID] = true
		if _, ok := g.members[m.UserID]; !ok {
			g.join(m, t)
		}
	}
	for id, m := range g.members {
		if !roster[id] && !since(m).After(t) {
			delete(g.members, id)
		}
	}
	g.overflow = 0
	return true
}

func microTime(t time.Time) *metav1.MicroTime {
	mt := metav1.NewMicroTime(t)
	return &mt
}
