package groupstate

import (
	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// Approximate JSON sizes of the parts of a status, in bytes, with field
// names, quotes and timestamps. They err on the large side.
const (
	fixedBytes     = 4096 // scalar fields, conditions, triggers, lastEvent
	memberBytes    = 75   // {"userID":"","role":"Member","joinedAt":"…"},
	roleTimeBytes  = 45   // ,"roleTime":"…"
	departureBytes = 90   // {"userID":"","reason":"Kicked","operator":"","at":"…"},
	entryBytes     = 160  // a journal entry without members, message, operator and key
	keyBytes       = 4    // quotes and comma around a key
)

// statusBytes estimates the JSON size of the parts of st the reducer
// writes, apart from the member list (see fitBudget).
func statusBytes(st *imv1.ChatGroupStatus) int {
	n := fixedBytes + len(st.Name) + len(st.Type) + len(st.Owner)
	for _, k := range st.RecentKeys {
		n += keyBytes + len(k)
	}
	for _, f := range []*imv1.ProfileField{st.Introduction, st.Notification, st.FaceURL} {
		if f != nil {
			n += len(f.Value) + 60
		}
	}
	for _, d := range st.Departed {
		n += departureBytes + len(d.UserID) + len(d.Operator) + len(d.Message)
	}
	for _, e := range st.Journal {
		n += entryBytes + len(e.Message) + len(e.Operator) + len(e.Key) + len(e.JoinType)
		for _, m := range e.Members {
			n += len(m) + 3
		}
	}
	return n
}

// fitBudget shrinks the status until its estimated size is within the
// byte budget: first the member lists of journal entries (oldest first,
// counted in membersOmitted), then departures (oldest first), and last the
// member list (memberCount stays exact, so the reconciler reports
// MembersTruncated). MaxMembers and MaxDeparted apply first in any case.
func fitBudget(st *imv1.ChatGroupStatus, lim Limits) {
	if n := len(st.Members) - lim.MaxMembers; lim.MaxMembers > 0 && n > 0 {
		st.Members = st.Members[:lim.MaxMembers]
	}
	if n := len(st.Departed) - lim.MaxDeparted; lim.MaxDeparted > 0 && n > 0 {
		st.Departed = st.Departed[n:]
	}
	budget := lim.maxStatusBytes()
	over := statusBytes(st) - budget
	if !lim.MembersElsewhere {
		for _, m := range st.Members {
			over += memberSize(m)
		}
	}
	for i := 0; over > 0 && i < len(st.Journal); i++ {
		e := &st.Journal[i]
		for _, m := range e.Members {
			over -= len(m) + 3
		}
		e.MembersOmitted += int32(len(e.Members))
		e.Members = nil
	}
	for over > 0 && len(st.Departed) > 0 {
		d := st.Departed[0]
		over -= departureBytes + len(d.UserID) + len(d.Operator) + len(d.Message)
		st.Departed = st.Departed[1:]
	}
	for over > 0 && len(st.Members) > 0 && !lim.MembersElsewhere {
		over -= memberSize(st.Members[len(st.Members)-1])
		st.Members = st.Members[:len(st.Members)-1]
	}
}

func memberSize(m imv1.GroupMember) int {
	n := memberBytes + len(m.UserID)
	if m.RoleTime != nil {
		n += roleTimeBytes
	}
	return n
}
