package openim

import (
	"encoding/json"
	"errors"
	"fmt"

	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// member is an entry of initMemberList.
type member struct {
	UserID    string `json:"userID"`
	RoleLevel int32  `json:"roleLevel"`
}

// wrappedString is a string that SetGroupInfoEx sends as a wrapper value:
// a bare string, null (unchanged), or {"value": "..."}. The other commands
// send a bare string.
type wrappedString string

// UnmarshalJSON accepts a string, null or an object with a string value.
func (w *wrappedString) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != nil {
			*w = wrappedString(*s)
		}
		return nil
	}
	var v struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("groupName must be a string, null or {\"value\": string}")
	}
	*w = wrappedString(v.Value)
	return nil
}

// payload holds the fields of every group callback this package reads,
// with the JSON tags of OpenIM's request structs.
type payload struct {
	CallbackCommand *string `json:"callbackCommand"`
	GroupID         string  `json:"groupID"`
	// callbackAfterCreateGroupCommand (sdkws.GroupInfo promoted) and
	// callbackAfterSetGroupInfoCommand.
	GroupName      wrappedString   `json:"groupName"`
	Notification   wrappedString   `json:"notification"`
	Introduction   wrappedString   `json:"introduction"`
	FaceURL        wrappedString   `json:"faceURL"`
	JoinSource     int32           `json:"joinSource"`
	OwnerUserID    string          `json:"ownerUserID"`
	CreatorUserID  string          `json:"creatorUserID"`
	GroupType      json.RawMessage `json:"groupType"`
	InitMemberList []member        `json:"initMemberList"`
	// callbackAfterJoinGroupCommand: the joiner is in inviterUserID.
	InviterUserID string `json:"inviterUserID"`
	// callbackAfterQuitGroupCommand and SetGroupMemberInfo.
	UserID string `json:"userID"`
	// callbackAfterKickGroupCommand.
	KickedUserIDs []string `json:"kickedUserIDs"`
	Reason        string   `json:"reason"`
	// callbackAfterDisMissGroupCommand.
	OwnerID   string   `json:"ownerID"`
	MembersID []string `json:"membersID"`
	// callbackAfterTransferGroupOwnerCommand.
	NewOwnerUserID string `json:"newOwnerUserID"`
	// callbackAfterSetGroupMemberInfoCommand: null when unchanged.
	RoleLevel *int32 `json:"roleLevel"`
}

// Decode parses the body of a callback for command. It returns
// provider.ErrUnknownCommand for commands that carry no group event, and a
// *provider.DecodeError for malformed JSON, wrong field types or missing
// required fields. OpenIM callbacks carry no event time: the server stamps
// the arrival time.
func (Provider) Decode(command string, body []byte) (groupstate.GroupEvent, error) {
	command = canonical(command)
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
	if p.CallbackCommand != nil && canonical(*p.CallbackCommand) != command {
		return groupstate.GroupEvent{}, fmt.Errorf("body callbackCommand %q does not match the path's %q", *p.CallbackCommand, command)
	}
	if p.GroupID == "" {
		return groupstate.GroupEvent{}, errors.New("groupID is required")
	}
	ev := groupstate.GroupEvent{Provider: Name, GroupID: p.GroupID, Command: command, Kind: cmd.kind}
	if err := cmd.decode(&p, &ev); err != nil {
		return groupstate.GroupEvent{}, err
	}
	if err := ev.Validate(); err != nil {
		return groupstate.GroupEvent{}, err
	}
	return ev, nil
}
