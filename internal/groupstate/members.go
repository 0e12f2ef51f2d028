package groupstate

import (
	"slices"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// since is the newest time at which an event proved m a member: its join
// or its last role change.
func since(m imv1.GroupMember) time.Time {
	var t time.Time
	if m.JoinedAt != nil {
		t = m.JoinedAt.Time
	}
	if m.RoleTime != nil && m.RoleTime.After(t) {
		t = m.RoleTime.Time
	}
	return t
}

// tombstoned reports whether a departure at or after t hides user.
func (g *groupState) tombstoned(user string, t time.Time) bool {
	d, ok := g.departed[user]
	return ok && !d.At.Time.Before(t)
}

// join adds a member unless a departure (tombstone) at or after t says
// otherwise; a leave wins over a join with the same time.
func (g *groupState) join(m Member, t time.Time) bool {
	if g.tombstoned(m.UserID, t) {
		return false
	}
	delete(g.departed, m.UserID)
	cur, ok := g.members[m.UserID]
	if !ok {
		cur = imv1.GroupMember{UserID: m.UserID}
	}
	changed := !ok
	switch {
	case cur.JoinedAt == nil || t.After(cur.JoinedAt.Time):
		cur.JoinedAt = microTime(t)
		changed = startRole(&cur, m.Role, t) || true
	case t.Equal(cur.JoinedAt.Time):
		changed = setRole(&cur, cmp0(m.Role, imv1.RoleMember), t) || changed
	}
	g.members[m.UserID] = cur
	return changed
}

// startRole gives a new membership starting at t its role: the join's
// (Member when the platform does not say), unless a role change at t or
// later is recorded. Older role changes belonged to an earlier membership.
func startRole(m *imv1.GroupMember, role imv1.MemberRole, t time.Time) bool {
	role = cmp0(role, imv1.RoleMember)
	switch {
	case m.RoleTime == nil || m.RoleTime.Time.Before(t):
		changed := m.Role != role
		m.Role, m.RoleTime = role, microTime(t)
		return changed
	case m.RoleTime.Time.Equal(t):
		return setRole(m, role, t)
	}
	return false
}

// changeRole applies a role change. A role change proves membership at t,
// so one that arrives before the member's join adds the member (without a
// join time, which the join then sets).
func (g *groupState) changeRole(m Member, t time.Time) bool {
	if m.Role == "" || g.tombstoned(m.UserID, t) {
		return false
	}
	cur, ok := g.members[m.UserID]
	if !ok {
		delete(g.departed, m.UserID)
		cur = imv1.GroupMember{UserID: m.UserID}
	}
	if cur.JoinedAt != nil && t.Before(cur.JoinedAt.Time) {
		return false // it belonged to an earlier membership
	}
	changed := setRole(&cur, m.Role, t) || !ok
	g.members[m.UserID] = cur
	return changed
}

// setRole gives m the role at t unless a newer role change (or one with
// the same time and a stronger role, by roleRank) is recorded.
func setRole(m *imv1.GroupMember, role imv1.MemberRole, t time.Time) bool {
	if role == "" {
		return false
	}
	if m.RoleTime != nil && (t.Before(m.RoleTime.Time) || t.Equal(m.RoleTime.Time) && roleRank[role] <= roleRank[m.Role]) {
		return false
	}
	changed := m.Role != role
	m.Role = role
	m.RoleTime = microTime(t)
	return changed
}

// leave removes a member unless an event after t proved the member, and
// records a tombstone so that older joins arriving later are ignored.
func (g *groupState) leave(userID string, ev *GroupEvent, t time.Time) bool {
	d, had := g.departed[userID]
	if had && !departureWins(ev, t, d) {
		return false
	}
	if cur, ok := g.members[userID]; ok {
		if since(cur).After(t) {
			return false
		}
		delete(g.members, userID)
	} else if !had && g.overflow > 0 {
		// Not listed: it may be one of the members above the bound.
		g.overflow--
	}
	g.departed[userID] = imv1.Departure{UserID: userID, Reason: ev.Reason, Operator: ev.Operator,
		Message: ev.Message, At: metav1.NewMicroTime(t)}
	return true
}

// departureWins reports whether a leave at t replaces the tombstone d: a
// newer one does, and at the same time the one with the greater reason,
// operator and message, so that the tombstone does not depend on arrival
// order.
func departureWins(ev *GroupEvent, t time.Time, d imv1.Departure) bool {
	if !t.Equal(d.At.Time) {
		return t.After(d.At.Time)
	}
	a := string(ev.Reason) + "\x00" + ev.Operator + "\x00" + ev.Message
	b := string(d.Reason) + "\x00" + d.Operator + "\x00" + d.Message
	return a > b
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
		JoinType: ev.JoinType,
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
	g.expireTombstones(lim)

	members := make([]imv1.GroupMember, 0, len(g.members))
	for _, m := range g.members {
		if m.RoleTime != nil && m.JoinedAt != nil && m.RoleTime.Equal(m.JoinedAt) {
			// Most roles are set by the join: roleTime is written only
			// when it differs from joinedAt, which it defaults to.
			m.RoleTime = nil
		}
		members = append(members, m)
	}
	sort.Slice(members, func(i, j int) bool { return members[i].UserID < members[j].UserID })
	st.Members = members
	st.MemberCount = int32(len(members)) + g.overflow
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
	st.Departed = departed
	fitBudget(st, lim)
	if len(st.Members) == 0 {
		st.Members = nil
	}
	if len(st.Departed) == 0 {
		st.Departed = nil
	}
}

// expireTombstones drops departures older than the tombstone TTL, counted
// back from the newest event time seen.
func (g *groupState) expireTombstones(lim Limits) {
	cut := g.newest.Add(-lim.tombstoneTTL())
	for id, d := range g.departed {
		if d.At.Time.Before(cut) {
			delete(g.departed, id)
		}
	}
}
