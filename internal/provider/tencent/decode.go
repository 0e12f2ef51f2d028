package tencent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// member is one entry of a member list.
type member struct {
	MemberAccount string `json:"Member_Account"`
}

// payload holds the fields of every group callback this package reads.
// Each command uses a subset; unknown fields are ignored.
type payload struct {
	CallbackCommand *string   `json:"CallbackCommand"`
	GroupID         string    `json:"GroupId"`
	Type            string    `json:"Type"`
	OperatorAccount string    `json:"Operator_Account"`
	OwnerAccount    string    `json:"Owner_Account"`
	Name            *string   `json:"Name"`
	MemberList      []member  `json:"MemberList"`
	NewMemberList   []member  `json:"NewMemberList"`
	ExitMemberList  []member  `json:"ExitMemberList"`
	ExitType        string    `json:"ExitType"`
	NewOwnerAccount string    `json:"NewOwner_Account"`
	MemberAccount   string    `json:"Member_Account"`
	Role            string    `json:"Role"`
	JoinType        string    `json:"JoinType"`
	Introduction    *string   `json:"Introduction"`
	Notification    *string   `json:"Notification"`
	FaceURL         *string   `json:"FaceUrl"`
	EventTime       eventTime `json:"EventTime"`
}

// Decode parses the body of a callback for command. It returns
// provider.ErrUnknownCommand for commands that carry no group event, and a
// *provider.DecodeError for malformed JSON, wrong field types or missing
// required fields. It does not set AppID, EventTime defaults or Key.
func (Provider) Decode(command string, body []byte) (groupstate.GroupEvent, error) {
	cmd, known := commands[command]
	if !known {
		return groupstate.GroupEvent{}, provider.ErrUnknownCommand
	}
	ev, err := decode(command, cmd, body)
	if err != nil {
		return groupstate.GroupEvent{}, &provider.DecodeError{Command: command, Err: err}
	}
	return ev, nil
}

// decode reads the fields every command shares, then the command's own.
func decode(command string, cmd command, body []byte) (groupstate.GroupEvent, error) {
	var p payload
	if err := provider.DecodeJSON(body, &p); err != nil {
		return groupstate.GroupEvent{}, err
	}
	if p.CallbackCommand != nil && *p.CallbackCommand != command {
		return groupstate.GroupEvent{}, fmt.Errorf("body CallbackCommand %q does not match the query's %q", *p.CallbackCommand, command)
	}
	if p.GroupID == "" {
		return groupstate.GroupEvent{}, errors.New("GroupId is required")
	}
	ev := groupstate.GroupEvent{
		Provider:  Name,
		GroupID:   p.GroupID,
		Command:   command,
		Kind:      cmd.kind,
		Operator:  p.OperatorAccount,
		Type:      groupType(p.Type),
		EventTime: p.EventTime.Time,
	}
	if p.Name != nil {
		ev.Name = *p.Name
	}
	if err := cmd.decode(&p, &ev); err != nil {
		return groupstate.GroupEvent{}, err
	}
	if err := ev.Validate(); err != nil {
		return groupstate.GroupEvent{}, err
	}
	return ev, nil
}

// memberList converts a member list, rejecting empty accounts.
func memberList(field string, list []member, role imv1.MemberRole) ([]groupstate.Member, error) {
	out := make([]groupstate.Member, 0, len(list))
	for i, m := range list {
		if m.MemberAccount == "" {
			return nil, fmt.Errorf("%s[%d].Member_Account is empty", field, i)
		}
		out = append(out, groupstate.Member{UserID: m.MemberAccount, Role: role})
	}
	return groupstate.DedupeMembers(out), nil
}

// groupType maps the legacy REST type IDs to the current product names:
// Private is Work and ChatRoom is Meeting.
func groupType(t string) string {
	switch t {
	case "Private":
		return "Work"
	case "ChatRoom":
		return "Meeting"
	}
	return t
}

// eventTime is EventTime: milliseconds since the epoch as a JSON number or
// a string of digits (the docs show both). Absent, null or "" is zero.
type eventTime struct{ time.Time }

// maxEventMillis is the end of year 9999: later times cannot be written as
// RFC 3339 timestamps in status.
const maxEventMillis = 253402300799999

func (t *eventTime) UnmarshalJSON(b []byte) error {
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
