// Package groupstate is the group state machine: GroupEvent, the
// provider-neutral form of one group change, and Reduce, which applies
// events to a ChatGroup's status. It is pure: it knows neither HTTP nor
// the API server, only the ChatGroup API types.
//
// Provider packages (internal/provider/...) turn callbacks into
// GroupEvents; the committer (internal/commit) reduces them into status
// and writes it.
package groupstate

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// GroupEvent is the provider-neutral form of one group callback. Providers
// produce it; everything downstream knows only this type.
type GroupEvent struct {
	// Provider and AppID identify the platform application.
	Provider imv1.Provider
	AppID    string
	// GroupID is the platform's group ID.
	GroupID string
	// Command is the provider's callback command the event was decoded
	// from, in its canonical spelling.
	Command string
	// Kind is what happened.
	Kind imv1.EventKind
	// Members are the users the event is about: the initial members of a
	// Created event, the joiners, the leavers, the final roster of a
	// Disbanded event (when the platform sends it), or the member whose
	// role changed in an InfoChanged event.
	Members []Member
	// Reason is Quit or Kicked for MembersLeft.
	Reason imv1.LeaveReason
	// Message is free text from the platform, such as a kick reason.
	Message string
	// Operator is the user who caused the event, when known.
	Operator string
	// Owner is the group owner (Created, Disbanded) or the new owner
	// (OwnerChanged).
	Owner string
	// Name is the group name, when the event carries one.
	Name string
	// Type is the normalised group type, when the event carries one.
	Type string
	// Introduction, Notification and FaceURL are the group profile fields
	// the event sets; nil when it leaves them unchanged.
	Introduction, Notification, FaceURL *string
	// JoinType says how members joined (MembersJoined): Tencent's JoinType
	// (Apply, Invited) or OpenIM's joinSource (Invited, Search, QRCode).
	JoinType string
	// EventTime is the platform's event time; zero when the platform sent
	// none, in which case the server stamps the arrival time and sets
	// Untimed.
	EventTime time.Time
	// Untimed says that EventTime is the arrival time, not the platform's:
	// the event's dedupe key then expires by age (see Limits).
	Untimed bool
	// Key is the content-derived deduplication key.
	Key string
}

// Member is a user named by an event, with a role when the event says.
type Member struct {
	UserID string
	Role   imv1.MemberRole
}

// Bounds from the ChatGroup API: values past them could never be stored.
const (
	// MaxIDLength bounds group, user, operator and owner IDs.
	MaxIDLength = 256
	// MaxTypeLength bounds the group type.
	MaxTypeLength = 64
	// MaxTextLength bounds free text (the group name and the message);
	// Validate truncates longer text.
	MaxTextLength = 1024
)

// Validate checks an event against the bounds of the ChatGroup API, so a
// bad payload is rejected with 400 instead of failing the status write of
// every event batched with it. Free text is truncated rather than rejected.
func (ev *GroupEvent) Validate() error {
	if err := checkID("group ID", ev.GroupID); err != nil {
		return err
	}
	for _, id := range []struct{ what, v string }{{"operator", ev.Operator}, {"owner", ev.Owner}} {
		if id.v != "" {
			if err := checkID(id.what, id.v); err != nil {
				return err
			}
		}
	}
	for _, m := range ev.Members {
		if err := checkID("member user ID", m.UserID); err != nil {
			return err
		}
	}
	if len(ev.Type) > MaxTypeLength {
		return fmt.Errorf("group type is longer than %d bytes", MaxTypeLength)
	}
	ev.Name = TruncateUTF8(ev.Name, MaxTextLength)
	if len(ev.JoinType) > MaxTypeLength {
		return fmt.Errorf("join type is longer than %d bytes", MaxTypeLength)
	}
	for _, f := range []*string{ev.Introduction, ev.Notification, ev.FaceURL} {
		if f != nil {
			*f = TruncateUTF8(*f, MaxTextLength)
		}
	}
	ev.Message = TruncateUTF8(ev.Message, MaxTextLength)
	return nil
}

func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s is empty", what)
	case len(id) > MaxIDLength:
		return fmt.Errorf("%s is longer than %d bytes", what, MaxIDLength)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s is not valid UTF-8", what)
	case strings.IndexFunc(id, isControl) >= 0:
		// IDs end up in trigger Jobs' environment, one member per line
		// in CHATGROUP_MEMBERS: a newline or another control character
		// would let a chosen ID pose as several, or reach a terminal or a
		// log as control codes (security audit M6).
		return fmt.Errorf("%s contains a control character", what)
	}
	return nil
}

// isControl reports control characters (C0, DEL, C1) and the Unicode line
// and paragraph separators.
func isControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// TruncateUTF8 cuts s to at most n bytes without splitting a character.
// Invalid UTF-8 sequences are replaced first, so the result is valid.
func TruncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// roleRank orders roles so duplicates keep the strongest.
var roleRank = map[imv1.MemberRole]int{imv1.RoleOwner: 3, imv1.RoleAdmin: 2, imv1.RoleMember: 1}

// DedupeMembers removes repeated users, keeping the first position and the
// strongest role seen. It reuses ms.
func DedupeMembers(ms []Member) []Member {
	index := make(map[string]int, len(ms))
	out := ms[:0]
	for _, m := range ms {
		if i, ok := index[m.UserID]; ok {
			if roleRank[m.Role] > roleRank[out[i].Role] {
				out[i].Role = m.Role
			}
			continue
		}
		index[m.UserID] = len(out)
		out = append(out, m)
	}
	return out
}

// WithRole gives user the role, adding the user when absent.
func WithRole(ms []Member, user string, role imv1.MemberRole) []Member {
	for i := range ms {
		if ms[i].UserID == user {
			ms[i].Role = role
			return ms
		}
	}
	return append(ms, Member{UserID: user, Role: role})
}
