package webhookserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// Tencent Cloud Chat group callback commands this codec understands. The
// command arrives in the CallbackCommand query parameter and again in the
// body.
const (
	TencentCreateGroup        = "Group.CallbackAfterCreateGroup"
	TencentNewMemberJoin      = "Group.CallbackAfterNewMemberJoin"
	TencentMemberExit         = "Group.CallbackAfterMemberExit"
	TencentGroupDestroyed     = "Group.CallbackAfterGroupDestroyed"
	TencentGroupInfoChanged   = "Group.CallbackAfterGroupInfoChanged"
	TencentChangeGroupOwner   = "Group.CallbackAfterChangeGroupOwner"
	TencentMemberFieldChanged = "Group.CallbackAfterMemberFieldChanged"
)

// TencentCodec decodes Tencent Cloud Chat "after" group callbacks.
type TencentCodec struct{}

var _ Codec = TencentCodec{}

// Provider implements Codec.
func (TencentCodec) Provider() imv1.Provider { return imv1.ProviderTencent }

// tencentMember is one entry of a Tencent member list.
type tencentMember struct {
	MemberAccount string `json:"Member_Account"`
}

// tencentPayload holds the fields of every group callback this codec
// reads. Each command uses a subset; unknown fields are ignored.
type tencentPayload struct {
	CallbackCommand *string         `json:"CallbackCommand"`
	GroupID         string          `json:"GroupId"`
	Type            string          `json:"Type"`
	OperatorAccount string          `json:"Operator_Account"`
	OwnerAccount    string          `json:"Owner_Account"`
	Name            *string         `json:"Name"`
	MemberList      []tencentMember `json:"MemberList"`
	NewMemberList   []tencentMember `json:"NewMemberList"`
	ExitMemberList  []tencentMember `json:"ExitMemberList"`
	ExitType        string          `json:"ExitType"`
	NewOwnerAccount string          `json:"NewOwner_Account"`
	MemberAccount   string          `json:"Member_Account"`
	Role            string          `json:"Role"`
	EventTime       tencentTime     `json:"EventTime"`
}

// Decode implements Codec.
func (TencentCodec) Decode(command string, body []byte) (GroupEvent, error) {
	kind, known := tencentKinds[command]
	if !known {
		return GroupEvent{}, ErrUnknownCommand
	}
	fail := func(format string, args ...any) (GroupEvent, error) {
		return GroupEvent{}, &DecodeError{Command: command, Err: fmt.Errorf(format, args...)}
	}

	var p tencentPayload
	if err := decodeJSON(body, &p); err != nil {
		return fail("%w", err)
	}
	if p.CallbackCommand != nil && *p.CallbackCommand != command {
		return fail("body CallbackCommand %q does not match the query's %q", *p.CallbackCommand, command)
	}
	if p.GroupID == "" {
		return fail("GroupId is required")
	}

	ev := GroupEvent{
		Provider:  imv1.ProviderTencent,
		GroupID:   p.GroupID,
		Command:   command,
		Kind:      kind,
		Operator:  p.OperatorAccount,
		Type:      tencentGroupType(p.Type),
		EventTime: p.EventTime.Time,
	}
	if p.Name != nil {
		ev.Name = *p.Name
	}

	var err error
	switch command {
	case TencentCreateGroup:
		ev.Owner = p.OwnerAccount
		ev.Members, err = tencentMembers("MemberList", p.MemberList, imv1.RoleMember)
		if err == nil && p.OwnerAccount != "" {
			// The documented sample leaves the owner out of MemberList.
			ev.Members = withRole(ev.Members, p.OwnerAccount, imv1.RoleOwner)
		}
	case TencentNewMemberJoin:
		ev.Members, err = tencentMembers("NewMemberList", p.NewMemberList, imv1.RoleMember)
		if err == nil && len(ev.Members) == 0 {
			err = errors.New("NewMemberList is empty")
		}
	case TencentMemberExit:
		ev.Reason, err = tencentExitType(p.ExitType)
		if err == nil {
			ev.Members, err = tencentMembers("ExitMemberList", p.ExitMemberList, "")
		}
		if err == nil && len(ev.Members) == 0 {
			err = errors.New("ExitMemberList is empty")
		}
	case TencentGroupDestroyed:
		// MemberList is the roster at the time of the disband; Community
		// groups omit it.
		ev.Owner = p.OwnerAccount
		ev.Members, err = tencentMembers("MemberList", p.MemberList, "")
	case TencentGroupInfoChanged:
		// Only the changed fields are present; Name is the one we keep.
	case TencentChangeGroupOwner:
		ev.Owner = p.NewOwnerAccount
		if ev.Owner == "" {
			err = errors.New("NewOwner_Account is required")
		}
	case TencentMemberFieldChanged:
		if p.MemberAccount == "" {
			err = errors.New("Member_Account is required")
			break
		}
		// Role is absent when only the NameCard changed.
		var role imv1.MemberRole
		switch {
		case p.Role == "":
		case strings.EqualFold(p.Role, "Admin"):
			role = imv1.RoleAdmin
		case strings.EqualFold(p.Role, "Member"):
			role = imv1.RoleMember
		default:
			err = fmt.Errorf("role %q is not Admin or Member", p.Role)
		}
		ev.Members = []Member{{UserID: p.MemberAccount, Role: role}}
	}
	if err == nil {
		err = ev.validate()
	}
	if err != nil {
		return fail("%w", err)
	}
	return ev, nil
}

var tencentKinds = map[string]imv1.EventKind{
	TencentCreateGroup:        imv1.EventCreated,
	TencentNewMemberJoin:      imv1.EventMembersJoined,
	TencentMemberExit:         imv1.EventMembersLeft,
	TencentGroupDestroyed:     imv1.EventDisbanded,
	TencentGroupInfoChanged:   imv1.EventInfoChanged,
	TencentChangeGroupOwner:   imv1.EventOwnerChanged,
	TencentMemberFieldChanged: imv1.EventInfoChanged,
}

// tencentMembers converts a member list, rejecting empty accounts.
func tencentMembers(field string, list []tencentMember, role imv1.MemberRole) ([]Member, error) {
	out := make([]Member, 0, len(list))
	for i, m := range list {
		if m.MemberAccount == "" {
			return nil, fmt.Errorf("%s[%d].Member_Account is empty", field, i)
		}
		out = append(out, Member{UserID: m.MemberAccount, Role: role})
	}
	return dedupeMembers(out), nil
}

// tencentExitType maps ExitType to a leave reason.
func tencentExitType(s string) (imv1.LeaveReason, error) {
	switch {
	case strings.EqualFold(s, "Kicked"):
		return imv1.LeaveKicked, nil
	case strings.EqualFold(s, "Quit"):
		return imv1.LeaveQuit, nil
	}
	return "", fmt.Errorf("ExitType %q is not Kicked or Quit", s)
}

// tencentGroupType maps the legacy REST type IDs to the current product
// names: Private is Work and ChatRoom is Meeting.
func tencentGroupType(t string) string {
	switch t {
	case "Private":
		return "Work"
	case "ChatRoom":
		return "Meeting"
	}
	return t
}

// tencentTime is EventTime: milliseconds since the epoch as a JSON number
// or a string of digits (the docs show both). Absent, null or "" is zero.
type tencentTime struct{ time.Time }

// maxEventMillis is the end of year 9999: later times cannot be written as
// RFC 3339 timestamps in status.
const maxEventMillis = 253402300799999

func (t *tencentTime) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			return nil
		}
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms < 0 || ms > maxEventMillis {
		return fmt.Errorf("EventTime %s is not a millisecond timestamp", string(b))
	}
	t.Time = time.UnixMilli(ms).UTC()
	return nil
}

// Reply implements Codec: {"ActionStatus","ErrorInfo","ErrorCode"}, the
// response every Tencent "after" callback page documents.
func (TencentCodec) Reply(o Outcome) []byte {
	status := "OK"
	if !o.OK {
		status = "FAIL"
	}
	b, _ := json.Marshal(struct {
		ActionStatus string
		ErrorInfo    string
		ErrorCode    int
	}{status, o.Message, o.Code})
	return b
}
