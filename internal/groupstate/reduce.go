package groupstate

import (
	"slices"
	"sort"
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

// Limits bound the size of a ChatGroup's status.
type Limits struct {
	// MaxMembers bounds status.members; memberCount stays exact above it.
	MaxMembers int
	// MaxDeparted bounds status.departed (the tombstones).
	MaxDeparted int
	// JournalSize bounds status.journal.
	JournalSize int
	// DedupeWindow bounds status.recentKeys.
	DedupeWindow int
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
	keys     map[string]struct{}
}

func loadGroupState(st *imv1.ChatGroupStatus) *groupState {
	g := &groupState{
		st:       st,
		members:  make(map[string]imv1.GroupMember, len(st.Members)),
		departed: make(map[string]imv1.Departure, len(st.Departed)),
		keys:     make(map[string]struct{}, len(st.RecentKeys)),
	}
	for _, m := range st.Members {
		g.members[m.UserID] = m
	}
	for _, d := range st.Departed {
		g.departed[d.UserID] = d
	}
	for _, k := range st.RecentKeys {
		g.keys[k] = struct{}{}
	}
	g.overflow = max(st.MemberCount-int32(len(st.Members)), 0)
	return g
}

// Reduce applies events, in order, to a ChatGroup status and reports what
// each did. The status is changed in place. Every event must have its
// EventTime and Key set. Reduce is deterministic and order-independent for
// timed events: any interleaving, duplication or reordering of the same
// events yields the same members, departures, owner, name and disband state
// (as long as the bounds are not exceeded).
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
	if _, seen := g.keys[ev.Key]; seen {
		return Duplicate
	}
	g.rememberKey(ev.Key, lim.DedupeWindow)

	// Disband is terminal for older events, across incarnations.
	if g.st.DisbandedAt != nil && !ev.EventTime.After(g.st.DisbandedAt.Time) {
		return Stale
	}
	if !g.change(ev) {
		return Stale
	}
	g.journal(ev, lim.JournalSize)
	return Applied
}

// change applies one event's effect and reports whether it changed the
// group (or must be journaled anyway).
func (g *groupState) change(ev *GroupEvent) bool {
	t := ev.EventTime
	changed := false
	switch ev.Kind {
	case imv1.EventCreated:
		if g.st.Disbanded {
			g.reincarnate()
		}
		g.setProfile(ev)
		for _, m := range ev.Members {
			g.join(m, t)
		}
		return true
	case imv1.EventMembersJoined:
		for _, m := range ev.Members {
			changed = g.join(m, t) || changed
		}
		return g.setType(ev.Type) || changed
	case imv1.EventMembersLeft:
		for _, m := range ev.Members {
			changed = g.leave(m.UserID, ev.Reason, ev.Operator, t) || changed
		}
		return changed
	case imv1.EventDisbanded:
		g.disband(ev, t)
		return true
	case imv1.EventInfoChanged:
		// Journaled even when no field we mirror changed (for example a
		// new notice), so that triggers on InfoChanged still fire.
		g.setProfile(ev)
		g.setRoles(ev.Members, t)
		return true
	case imv1.EventOwnerChanged:
		return g.setOwner(ev.Owner, t)
	}
	return false
}

// setRoles gives listed members their new role, unless they joined after t.
func (g *groupState) setRoles(members []Member, t time.Time) {
	for _, m := range members {
		if cur, ok := g.members[m.UserID]; ok && m.Role != "" && !joinedAfter(cur, t) {
			cur.Role = m.Role
			g.members[m.UserID] = cur
		}
	}
}

func (g *groupState) rememberKey(key string, window int) {
	g.keys[key] = struct{}{}
	g.st.RecentKeys = append(g.st.RecentKeys, key)
	if n := len(g.st.RecentKeys) - window; n > 0 {
		for _, k := range g.st.RecentKeys[:n] {
			delete(g.keys, k)
		}
		g.st.RecentKeys = slices.Clone(g.st.RecentKeys[n:])
	}
}

// reincarnate starts a new life of a group ID after a disband: everything
// from before the disband is forgotten, except the disband time itself.
// Events newer than the disband that arrived before this Created event
// belong to the new incarnation and are kept.
func (g *groupState) reincarnate() {
	st := g.st
	cut := st.DisbandedAt.Time
	for id, m := range g.members {
		if !joinedAfter(m, cut) {
			delete(g.members, id)
		}
	}
	for id, d := range g.departed {
		if !d.At.After(cut) {
			delete(g.departed, id)
		}
	}
	g.overflow = 0
	st.Disbanded = false
	st.DisbandedBy = ""
}

func (g *groupState) setProfile(ev *GroupEvent) {
	st := g.st
	if ev.Name != "" && (st.NameTime == nil || !ev.EventTime.Before(st.NameTime.Time)) {
		st.Name = ev.Name
		st.NameTime = microTime(ev.EventTime)
	}
	g.setType(ev.Type)
	if ev.Owner != "" {
		g.setOwner(ev.Owner, ev.EventTime)
	}
}

func (g *groupState) setType(typ string) bool {
	if typ == "" || typ == g.st.Type {
		return false
	}
	g.st.Type = typ
	return true
}

func (g *groupState) setOwner(owner string, t time.Time) bool {
	st := g.st
	if owner == "" || (st.OwnerTime != nil && t.Before(st.OwnerTime.Time)) {
		return false
	}
	changed := st.Owner != owner
	st.Owner = owner
	st.OwnerTime = microTime(t)
	return changed
}

// join adds a member unless a newer departure (tombstone) says otherwise.
func (g *groupState) join(m Member, t time.Time) bool {
	if d, ok := g.departed[m.UserID]; ok && !d.At.Time.Before(t) {
		return false
	}
	delete(g.departed, m.UserID)
	if cur, ok := g.members[m.UserID]; ok {
		changed := false
		if cur.JoinedAt == nil || t.After(cur.JoinedAt.Time) {
			cur.JoinedAt = microTime(t)
			changed = true
		}
		if m.Role != "" && cur.Role != m.Role {
			cur.Role = m.Role
			changed = true
		}
		g.members[m.UserID] = cur
		return changed
	}
	g.members[m.UserID] = imv1.GroupMember{UserID: m.UserID, Role: m.Role, JoinedAt: microTime(t)}
	return true
}

// leave removes a member unless the member joined after t, and records a
// tombstone so that older joins arriving later are ignored.
func (g *groupState) leave(userID string, reason imv1.LeaveReason, operator string, t time.Time) bool {
	if d, ok := g.departed[userID]; ok && !d.At.Time.Before(t) {
		return false
	}
	if cur, ok := g.members[userID]; ok {
		if joinedAfter(cur, t) {
			return false
		}
		delete(g.members, userID)
	} else if g.overflow > 0 {
		// Not listed: it may be one of the members above the bound.
		g.overflow--
	}
	g.departed[userID] = imv1.Departure{UserID: userID, Reason: reason, Operator: operator, At: metav1.NewMicroTime(t)}
	return true
}

func (g *groupState) disband(ev *GroupEvent, t time.Time) {
	st := g.st
	st.Disbanded = true
	st.DisbandedAt = microTime(t)
	st.DisbandedBy = ev.Operator
	g.setProfile(ev)
	// Every older event is stale from now on, so older tombstones have no
	// use left.
	for id, d := range g.departed {
		if !d.At.After(t) {
			delete(g.departed, id)
		}
	}
	if len(ev.Members) == 0 {
		// Without a final roster (OpenIM usually, Tencent communities) the
		// membership stays as received before the disband.
		return
	}
	// The platform sent the final roster: it replaces what we knew as of t,
	// whatever order the older events arrived in.
	roster := make(map[string]bool, len(ev.Members))
	for _, m := range ev.Members {
		roster[m.UserID] = true
		if _, ok := g.members[m.UserID]; !ok {
			g.join(m, t)
		}
	}
	for id, m := range g.members {
		if !roster[id] && !joinedAfter(m, t) {
			delete(g.members, id)
		}
	}
	g.overflow = 0
}

func (g *groupState) journal(ev *GroupEvent, size int) {
	st := g.st
	st.LastSeq++
	entry := imv1.JournalEntry{
		Seq:      st.LastSeq,
		Kind:     ev.Kind,
		Reason:   ev.Reason,
		Message:  ev.Message, // bounded by Validate
		Operator: ev.Operator,
		Time:     metav1.NewMicroTime(ev.EventTime),
		Key:      ev.Key,
	}
	for i, m := range ev.Members {
		if i == maxJournalMembers {
			entry.MembersOmitted = int32(len(ev.Members) - i)
			break
		}
		entry.Members = append(entry.Members, m.UserID)
	}
	st.Journal = append(st.Journal, entry)
	if n := len(st.Journal) - size; n > 0 {
		st.Journal = slices.Clone(st.Journal[n:])
	}
	st.LastEvent = &imv1.LastEvent{Kind: ev.Kind, Time: entry.Time, Key: ev.Key}
	st.EventsApplied++
}

// store writes the working maps back as sorted, bounded lists.
func (g *groupState) store(lim Limits) {
	st := g.st
	// The owner's role follows status.owner; nobody else is Owner.
	for id, m := range g.members {
		switch {
		case id == st.Owner && m.Role != imv1.RoleOwner:
			m.Role = imv1.RoleOwner
		case id != st.Owner && m.Role == imv1.RoleOwner:
			m.Role = imv1.RoleMember
		default:
			continue
		}
		g.members[id] = m
	}

	members := make([]imv1.GroupMember, 0, len(g.members))
	for _, m := range g.members {
		members = append(members, m)
	}
	sort.Slice(members, func(i, j int) bool { return members[i].UserID < members[j].UserID })
	overflow := g.overflow
	if len(members) > lim.MaxMembers {
		overflow += int32(len(members) - lim.MaxMembers)
		members = members[:lim.MaxMembers]
	}
	st.Members = members
	st.MemberCount = int32(len(members)) + overflow

	departed := make([]imv1.Departure, 0, len(g.departed))
	for _, d := range g.departed {
		departed = append(departed, d)
	}
	sort.Slice(departed, func(i, j int) bool {
		if !departed[i].At.Equal(&departed[j].At) {
			return departed[i].At.Before(&departed[j].At)
		}
		return departed[i].UserID < departed[j].UserID
	})
	if n := len(departed) - lim.MaxDeparted; n > 0 {
		departed = departed[n:]
	}
	st.Departed = departed
	if len(st.Members) == 0 {
		st.Members = nil
	}
	if len(st.Departed) == 0 {
		st.Departed = nil
	}
}

func joinedAfter(m imv1.GroupMember, t time.Time) bool {
	return m.JoinedAt != nil && m.JoinedAt.After(t)
}

func microTime(t time.Time) *metav1.MicroTime {
	mt := metav1.NewMicroTime(t)
	return &mt
}
