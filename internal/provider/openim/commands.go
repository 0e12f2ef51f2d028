package openim

import (
	"encoding/json"
	"errors"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
)

// The group callback commands this package understands.
const (
	CreateGroup  = "callbackAfterCreateGroupCommand"
	JoinGroup    = "callbackAfterJoinGroupCommand"
	QuitGroup    = "callbackAfterQuitGroupCommand"
	KickGroup    = "callbackAfterKickGroupCommand"
	DismissGroup = "callbackAfterDisMissGroupCommand"
	SetGroupInfo = "callbackAfterSetGroupInfoCommand"
	// SetGroupInfoEx is the only rename path of the OpenIM SDK
	// (set_group_info_ex); its fields are wrapper values.
	SetGroupInfoEx     = "callbackAfterSetGroupInfoExCommand"
	TransferGroupOwner = "callbackAfterTransferGroupOwnerCommand"
	SetGroupMemberInfo = "callbackAfterSetGroupMemberInfoCommand"

	// dismissGroupLowerM is the lower-case spelling of DismissGroup found
	// in some docs and third-party code.
	dismissGroupLowerM = "callbackAfterDismissGroupCommand"
)

// OpenIM role levels and group types (openimsdk/protocol).
const (
	RoleLevelOwner   = 100
	RoleLevelAdmin   = 60
	RoleLevelMember  = 20
	WorkingGroupType = 2 // the only type CreateGroup accepts
)

// command is one row of the command table: the kind of event a command
// produces, and how it fills the event from the payload.
type command struct {
	kind   imv1.EventKind
	decode func(p *payload, ev *groupstate.GroupEvent) error
}

// commands is the command table. Commands not in it are ignored.
var commands = map[string]command{
	CreateGroup:        {imv1.EventCreated, decodeCreate},
	JoinGroup:          {imv1.EventMembersJoined, decodeJoin},
	QuitGroup:          {imv1.EventMembersLeft, decodeQuit},
	KickGroup:          {imv1.EventMembersLeft, decodeKick},
	DismissGroup:       {imv1.EventDisbanded, decodeDismiss},
	SetGroupInfo:       {imv1.EventInfoChanged, decodeSetInfo},
	SetGroupInfoEx:     {imv1.EventInfoChanged, decodeSetInfo},
	TransferGroupOwner: {imv1.EventOwnerChanged, decodeTransfer},
	SetGroupMemberInfo: {imv1.EventInfoChanged, decodeSetMemberInfo},
}

// canonical canonicalises a command. OpenIM spells the dismiss command
// with a capital M; the lower-case spelling is accepted too.
func canonical(command string) string {
	if command == dismissGroupLowerM {
		return DismissGroup
	}
	return command
}

func decodeCreate(p *payload, ev *groupstate.GroupEvent) error {
	ev.Name, ev.Owner, ev.Operator = string(p.GroupName), p.OwnerUserID, p.CreatorUserID
	ev.Type = groupType(p.GroupType)
	setProfile(p, ev)
	ev.Members = initMembers(p.InitMemberList, p.OwnerUserID)
	return nil
}

// decodeJoin reads a join: OpenIM's JoinGroup puts the joining user in
// inviterUserID.
func decodeJoin(p *payload, ev *groupstate.GroupEvent) error {
	ev.Members = []groupstate.Member{{UserID: p.InviterUserID, Role: imv1.RoleMember}}
	ev.Operator = p.InviterUserID
	ev.JoinType = joinSources[p.JoinSource]
	return nil
}

func decodeQuit(p *payload, ev *groupstate.GroupEvent) error {
	ev.Reason = imv1.LeaveQuit
	ev.Members = []groupstate.Member{{UserID: p.UserID}}
	ev.Operator = p.UserID
	return nil
}

func decodeKick(p *payload, ev *groupstate.GroupEvent) error {
	ev.Reason, ev.Message = imv1.LeaveKicked, p.Reason
	ev.Members = idMembers(p.KickedUserIDs)
	if len(ev.Members) == 0 {
		return errors.New("kickedUserIDs is empty")
	}
	return nil
}

// decodeDismiss reads a dismiss. groupType is a garbled rune and is
// ignored. membersID is empty when OpenIM deleted the members before the
// callback.
func decodeDismiss(p *payload, ev *groupstate.GroupEvent) error {
	ev.Owner = p.OwnerID
	ev.Members = idMembers(p.MembersID)
	return nil
}

// decodeSetInfo reads a profile change: an empty groupName means the name
// did not change.
func decodeSetInfo(p *payload, ev *groupstate.GroupEvent) error {
	ev.Name = string(p.GroupName)
	setProfile(p, ev)
	return nil
}

// setProfile reads the profile fields; OpenIM leaves a field unchanged
// when it is empty (or null).
func setProfile(p *payload, ev *groupstate.GroupEvent) {
	for _, f := range []struct {
		dst **string
		v   wrappedString
	}{{&ev.Introduction, p.Introduction}, {&ev.Notification, p.Notification}, {&ev.FaceURL, p.FaceURL}} {
		if f.v != "" {
			v := string(f.v)
			*f.dst = &v
		}
	}
}

// joinSources names OpenIM's joinSource values.
var joinSources = map[int32]string{2: "Invited", 3: "Search", 4: "QRCode"}

func decodeTransfer(p *payload, ev *groupstate.GroupEvent) error {
	if p.NewOwnerUserID == "" {
		return errors.New("newOwnerUserID is required")
	}
	ev.Owner = p.NewOwnerUserID
	return nil
}

func decodeSetMemberInfo(p *payload, ev *groupstate.GroupEvent) error {
	m := groupstate.Member{UserID: p.UserID}
	if p.RoleLevel != nil {
		m.Role = role(*p.RoleLevel)
	}
	ev.Members = []groupstate.Member{m}
	return nil
}

// initMembers converts initMemberList. OpenIM lists the owner (100) and
// admins (60) first and then every member again at 20, so duplicates keep
// their highest role.
func initMembers(list []member, owner string) []groupstate.Member {
	ms := make([]groupstate.Member, 0, len(list)+1)
	for _, m := range list {
		ms = append(ms, groupstate.Member{UserID: m.UserID, Role: role(m.RoleLevel)})
	}
	ms = groupstate.DedupeMembers(ms)
	if owner != "" {
		ms = groupstate.WithRole(ms, owner, imv1.RoleOwner)
	}
	return ms
}

// role maps an OpenIM role level to a member role.
func role(level int32) imv1.MemberRole {
	switch level {
	case RoleLevelOwner:
		return imv1.RoleOwner
	case RoleLevelAdmin:
		return imv1.RoleAdmin
	}
	return imv1.RoleMember
}

// groupType reads the numeric groupType of a create callback. Only working
// groups (2) can be created; anything else is left unknown rather than
// rejected, since the field does not affect membership.
func groupType(raw json.RawMessage) string {
	var n int64
	if json.Unmarshal(raw, &n) == nil && n == WorkingGroupType {
		return "Work"
	}
	return ""
}

// idMembers converts a list of user IDs, dropping repeats.
func idMembers(ids []string) []groupstate.Member {
	ms := make([]groupstate.Member, 0, len(ids))
	for _, id := range ids {
		ms = append(ms, groupstate.Member{UserID: id})
	}
	return groupstate.DedupeMembers(ms)
}
