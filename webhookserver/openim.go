package webhookserver

import (
	"encoding/json"
	"errors"
	"fmt"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// OpenIM group callback commands this codec understands. OpenIM posts to
// <url>/<command>; the body repeats the command in callbackCommand.
const (
	OpenIMCreateGroup        = "callbackAfterCreateGroupCommand"
	OpenIMJoinGroup          = "callbackAfterJoinGroupCommand"
	OpenIMQuitGroup          = "callbackAfterQuitGroupCommand"
	OpenIMKickGroup          = "callbackAfterKickGroupCommand"
	OpenIMDismissGroup       = "callbackAfterDisMissGroupCommand"
	OpenIMSetGroupInfo       = "callbackAfterSetGroupInfoCommand"
	OpenIMTransferGroupOwner = "callbackAfterTransferGroupOwnerCommand"
	OpenIMSetGroupMemberInfo = "callbackAfterSetGroupMemberInfoCommand"
	openIMDismissGroupLowerM = "callbackAfterDismissGroupCommand"
	openIMRoleOwner          = 100
	openIMRoleAdmin          = 60
	openIMWorkingGroupType   = 2
)

// OpenIMCodec decodes OpenIM "after" group callbacks.
type OpenIMCodec struct{}

var _ Codec = OpenIMCodec{}

// Provider implements Codec.
func (OpenIMCodec) Provider() imv1.Provider { return imv1.ProviderOpenIM }

// openIMMember is an entry of initMemberList.
type openIMMember struct {
	UserID    string `json:"userID"`
	RoleLevel int32  `json:"roleLevel"`
}

// openIMPayload holds the fields of every group callback this codec reads,
// with the JSON tags of OpenIM's request structs.
type openIMPayload struct {
	CallbackCommand *string `json:"callbackCommand"`
	GroupID         string  `json:"groupID"`
	// callbackAfterCreateGroupCommand (sdkws.GroupInfo promoted) and
	// callbackAfterSetGroupInfoCommand.
	GroupName      string          `json:"groupName"`
	OwnerUserID    string          `json:"ownerUserID"`
	CreatorUserID  string          `json:"creatorUserID"`
	GroupType      json.RawMessage `json:"groupType"`
	InitMemberList []openIMMember  `json:"initMemberList"`
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

var openIMKinds = map[string]imv1.EventKind{
	OpenIMCreateGroup:        imv1.EventCreated,
	OpenIMJoinGroup:          imv1.EventMembersJoined,
	OpenIMQuitGroup:          imv1.EventMembersLeft,
	OpenIMKickGroup:          imv1.EventMembersLeft,
	OpenIMDismissGroup:       imv1.EventDisbanded,
	OpenIMSetGroupInfo:       imv1.EventInfoChanged,
	OpenIMTransferGroupOwner: imv1.EventOwnerChanged,
	OpenIMSetGroupMemberInfo: imv1.EventInfoChanged,
}

// openIMCommand canonicalises a command. OpenIM spells the dismiss command
// with a capital M; the lower-case spelling found in some docs and
// third-party code is accepted too.
func openIMCommand(command string) string {
	if command == openIMDismissGroupLowerM {
		return OpenIMDismissGroup
	}
	return command
}

// Decode implements Codec. OpenIM callbacks carry no event time: the server
// stamps the arrival time.
func (OpenIMCodec) Decode(command string, body []byte) (GroupEvent, error) {
	command = openIMCommand(command)
	kind, known := openIMKinds[command]
	if !known {
		return GroupEvent{}, ErrUnknownCommand
	}
	fail := func(err error) (GroupEvent, error) {
		return GroupEvent{}, &DecodeError{Command: command, Err: err}
	}

	var p openIMPayload
	if err := decodeJSON(body, &p); err != nil {
		return fail(err)
	}
	if p.CallbackCommand != nil && openIMCommand(*p.CallbackCommand) != command {
		return fail(fmt.Errorf("body callbackCommand %q does not match the path's %q", *p.CallbackCommand, command))
	}
	if p.GroupID == "" {
		return fail(errors.New("groupID is required"))
	}

	ev := GroupEvent{Provider: imv1.ProviderOpenIM, GroupID: p.GroupID, Command: command, Kind: kind}
	var err error
	switch command {
	case OpenIMCreateGroup:
		ev.Name, ev.Owner, ev.Operator = p.GroupName, p.OwnerUserID, p.CreatorUserID
		ev.Type = openIMGroupType(p.GroupType)
		ev.Members = openIMInitMembers(p.InitMemberList, p.OwnerUserID)
	case OpenIMJoinGroup:
		// OpenIM's JoinGroup puts the joining user in inviterUserID.
		ev.Members = []Member{{UserID: p.InviterUserID, Role: imv1.RoleMember}}
		ev.Operator = p.InviterUserID
	case OpenIMQuitGroup:
		ev.Reason = imv1.LeaveQuit
		ev.Members = []Member{{UserID: p.UserID}}
		ev.Operator = p.UserID
	case OpenIMKickGroup:
		ev.Reason, ev.Message = imv1.LeaveKicked, p.Reason
		ev.Members = idMembers(p.KickedUserIDs)
		if len(ev.Members) == 0 {
			err = errors.New("kickedUserIDs is empty")
		}
	case OpenIMDismissGroup:
		// groupType is a garbled rune and is ignored. membersID is empty
		// when OpenIM deleted the members before the callback.
		ev.Owner = p.OwnerID
		ev.Members = idMembers(p.MembersID)
	case OpenIMSetGroupInfo:
		// An empty groupName means the name did not change.
		ev.Name = p.GroupName
	case OpenIMTransferGroupOwner:
		ev.Owner = p.NewOwnerUserID
		if ev.Owner == "" {
			err = errors.New("newOwnerUserID is required")
		}
	case OpenIMSetGroupMemberInfo:
		m := Member{UserID: p.UserID}
		if p.RoleLevel != nil {
			m.Role = openIMRole(*p.RoleLevel)
		}
		ev.Members = []Member{m}
	}
	if err == nil {
		err = ev.validate()
	}
	if err != nil {
		return fail(err)
	}
	return ev, nil
}

// openIMInitMembers converts initMemberList. OpenIM lists the owner (100)
// and admins (60) first and then every member again at 20, so duplicates
// keep their highest role.
func openIMInitMembers(list []openIMMember, owner string) []Member {
	ms := make([]Member, 0, len(list)+1)
	for _, m := range list {
		ms = append(ms, Member{UserID: m.UserID, Role: openIMRole(m.RoleLevel)})
	}
	ms = dedupeMembers(ms)
	if owner != "" {
		ms = withRole(ms, owner, imv1.RoleOwner)
	}
	return ms
}

// openIMRole maps an OpenIM role level to a member role.
func openIMRole(level int32) imv1.MemberRole {
	switch level {
	case openIMRoleOwner:
		return imv1.RoleOwner
	case openIMRoleAdmin:
		return imv1.RoleAdmin
	}
	return imv1.RoleMember
}

// openIMGroupType reads the numeric groupType of a create callback. Only
// working groups (2) can be created; anything else is left unknown rather
// than rejected, since the field does not affect membership.
func openIMGroupType(raw json.RawMessage) string {
	var n int64
	if json.Unmarshal(raw, &n) == nil && n == openIMWorkingGroupType {
		return "Work"
	}
	return ""
}

// idMembers converts a list of user IDs, dropping repeats.
func idMembers(ids []string) []Member {
	ms := make([]Member, 0, len(ids))
	for _, id := range ids {
		ms = append(ms, Member{UserID: id})
	}
	return dedupeMembers(ms)
}

// Reply implements Codec: {"actionCode","errCode","errMsg","errDlt",
// "nextCode"}, OpenIM's CommonCallbackResp. nextCode stays 0: "after"
// callbacks cannot be refused.
func (OpenIMCodec) Reply(o Outcome) []byte {
	actionCode := 0
	if !o.OK {
		actionCode = 1
	}
	b, _ := json.Marshal(struct {
		ActionCode int    `json:"actionCode"`
		ErrCode    int    `json:"errCode"`
		ErrMsg     string `json:"errMsg"`
		ErrDlt     string `json:"errDlt"`
		NextCode   int    `json:"nextCode"`
	}{actionCode, o.Code, o.Message, o.Detail, 0})
	return b
}
