// Package resync repairs ChatGroups that missed callbacks: it reads each
// group from the provider's REST API (a snapshot), compares it with the
// ChatGroup's status, and turns the difference into ordinary GroupEvents
// (members joined or left, owner or profile changed, disbanded), stamped
// with the time the snapshot was started and marked with reason Resync.
// They go through the same committer and reducer as callbacks and are
// journaled, so triggers fire for repaired state too.
//
// Stamping with the start of the read is what keeps resync from undoing a
// callback: anything the snapshot missed happened after the read started,
// so its callback carries a later time and wins in the reducer's
// last-writer-wins rules.
package resync

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// Command is the GroupEvent.Command of resync events.
const Command = "Resync"

// Diff returns the events that bring a ChatGroup's status to a snapshot
// of its group taken at the time at. It returns nothing for a snapshot that
// failed, and changes no member when the member list was not read
// consistently or when status lists only part of the members.
func Diff(spec imv1.ChatGroupSpec, st *imv1.ChatGroupStatus, snap provider.GroupSnapshot, at time.Time) []groupstate.GroupEvent {
	if snap.Err != nil {
		return nil
	}
	var evs []groupstate.GroupEvent
	add := func(ev groupstate.GroupEvent) {
		ev.Provider, ev.AppID, ev.GroupID = spec.Provider, spec.AppID, spec.GroupID
		ev.Command, ev.Reason, ev.EventTime = Command, imv1.LeaveResync, at
		ev.Key = eventKey(&ev)
		evs = append(evs, ev)
	}
	switch {
	case snap.Gone:
		if !st.Disbanded && known(st) {
			add(groupstate.GroupEvent{Kind: imv1.EventDisbanded})
		}
		return evs
	case !known(st) || st.Disbanded:
		// A group that sent no callback yet (discovered), or a group the
		// mirror thinks disbanded but the provider has: a new incarnation.
		if snap.MembersComplete {
			add(groupstate.GroupEvent{Kind: imv1.EventCreated, Owner: snap.Owner, Name: snap.Name, Type: snap.Type,
				Members: slices.Clone(snap.Members)})
		}
		return evs
	}
	if snap.MembersComplete && int32(len(st.Members)) >= st.MemberCount {
		joined, left, roles := memberDiff(st.Members, snap.Members)
		if len(joined) > 0 {
			add(groupstate.GroupEvent{Kind: imv1.EventMembersJoined, Members: joined})
		}
		if len(left) > 0 {
			add(groupstate.GroupEvent{Kind: imv1.EventMembersLeft, Members: left})
		}
		if len(roles) > 0 {
			add(groupstate.GroupEvent{Kind: imv1.EventInfoChanged, Members: roles})
		}
	}
	if snap.Owner != "" && snap.Owner != st.Owner {
		add(groupstate.GroupEvent{Kind: imv1.EventOwnerChanged, Owner: snap.Owner})
	}
	if (snap.Name != "" && snap.Name != st.Name) || (snap.Type != "" && snap.Type != st.Type) {
		add(groupstate.GroupEvent{Kind: imv1.EventInfoChanged, Name: snap.Name, Type: snap.Type})
	}
	return evs
}

// known reports whether the ChatGroup has ever been written by an event.
func known(st *imv1.ChatGroupStatus) bool {
	return st.EventsApplied > 0 || st.LastEvent != nil || len(st.Members) > 0 || st.DisbandedAt != nil
}

// memberDiff returns the members to add, the members to remove and the
// members whose role differs, each sorted by user ID. A member's role is
// compared only when the snapshot says it.
func memberDiff(have []imv1.GroupMember, want []groupstate.Member) (joined, left, roles []groupstate.Member) {
	cur := make(map[string]imv1.MemberRole, len(have))
	for _, m := range have {
		cur[m.UserID] = m.Role
	}
	seen := make(map[string]bool, len(want))
	for _, m := range want {
		seen[m.UserID] = true
		role, ok := cur[m.UserID]
		switch {
		case !ok:
			joined = append(joined, m)
		case m.Role != "" && role != m.Role:
			roles = append(roles, m)
		}
	}
	for _, m := range have {
		if !seen[m.UserID] {
			left = append(left, groupstate.Member{UserID: m.UserID})
		}
	}
	byID := func(a, b groupstate.Member) int {
		switch {
		case a.UserID < b.UserID:
			return -1
		case a.UserID > b.UserID:
			return 1
		}
		return 0
	}
	slices.SortFunc(joined, byID)
	slices.SortFunc(left, byID)
	slices.SortFunc(roles, byID)
	return joined, left, roles
}

// eventKey is the dedupe key of a resync event: a hash of its content and
// snapshot time, so a pass that is retried does not apply twice, and the
// next pass (a new time) is a new event.
func eventKey(ev *groupstate.GroupEvent) string {
	h := sha256.New()
	for _, part := range []string{"resync", string(ev.Provider), ev.AppID, ev.GroupID, string(ev.Kind),
		strconv.FormatInt(ev.EventTime.UnixNano(), 10), ev.Owner, ev.Name, ev.Type} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	for _, m := range ev.Members {
		h.Write([]byte(m.UserID))
		h.Write([]byte{1})
		h.Write([]byte(m.Role))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
