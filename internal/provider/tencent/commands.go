package tencent

import (
	"errors"
	"fmt"
	"strings"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
)

// The group callback commands this package understands.
const (
	CreateGroup        = "Group.CallbackAfterCreateGroup"
	NewMemberJoin      = "Group.CallbackAfterNewMemberJoin"
	MemberExit         = "Group.CallbackAfterMemberExit"
	GroupDestroyed     = "Group.CallbackAfterGroupDestroyed"
	GroupInfoChanged   = "Group.CallbackAfterGroupInfoChanged"
	ChangeGroupOwner   = "Group.CallbackAfterChangeGroupOwner"
	MemberFieldChanged = "Group.CallbackAfterMemberFieldChanged"
)

// command is one row of the command table: the kind of event a command
// produces, and how it fills the event from the payload beyond the fields
// every command shares.
type command struct {
	kind   imv1.EventKind
	decode func(p *payload, ev *groupstate.GroupEvent) error
}

// commands is the command table. Commands not in it are ignored.
var commands = map[string]command{
	CreateGroup:        {imv1.EventCreated, decodeCreate},
	NewMemberJoin:      {imv1.EventMembersJoined, decodeJoin},
	MemberExit:         {imv1.EventMembersLeft, decodeExit},
	GroupDestroyed:     {imv1.EventDisbanded, decodeDestroyed},
	GroupInfoChanged:   {imv1.EventInfoChanged, decodeInfoChanged},
	ChangeGroupOwner:   {imv1.EventOwnerChanged, decodeOwnerChanged},
	MemberFieldChanged: {imv1.EventInfoChanged, decodeMemberFieldChanged},
}

func decodeCreate(p *payload, ev *groupstate.GroupEvent) error {
	ev.Owner = p.OwnerAccount
	members, err := memberList("MemberList", p.MemberList, imv1.RoleMember)
	if err != nil {
		return err
	}
	if p.OwnerAccount != "" {
		// The documented sample leaves the owner out of MemberList.
		members = groupstate.WithRole(members, p.OwnerAccount, imv1.RoleOwner)
	}
	ev.Members = members
	return nil
}

func decodeJoin(p *payload, ev *groupstate.GroupEvent) error {
	members, err := memberList("NewMemberList", p.NewMemberList, imv1.RoleMember)
	if err != nil {
		return err
	}
	if len(members) == 0 {
		return errors.New("NewMemberList is empty")
	}
	ev.Members, ev.JoinType = members, p.JoinType
	return nil
}

func decodeExit(p *payload, ev *groupstate.GroupEvent) error {
	reason, err := exitReason(p.ExitType)
	if err != nil {
		return err
	}
	members, err := memberList("ExitMemberList", p.ExitMemberList, "")
	if err != nil {
		return err
	}
	if len(members) == 0 {
		return errors.New("ExitMemberList is empty")
	}
	ev.Reason, ev.Members = reason, members
	return nil
}

// decodeDestroyed reads the disband. MemberList is the roster at the time
// of the disband; Community groups omit it.
func decodeDestroyed(p *payload, ev *groupstate.GroupEvent) error {
	ev.Owner = p.OwnerAccount
	members, err := memberList("MemberList", p.MemberList, "")
	ev.Members = members
	return err
}

// decodeInfoChanged reads the profile fields: only the changed ones are
// present (Name is read for every command).
func decodeInfoChanged(p *payload, ev *groupstate.GroupEvent) error {
	ev.Introduction, ev.Notification, ev.FaceURL = p.Introduction, p.Notification, p.FaceURL
	return nil
}

func decodeOwnerChanged(p *payload, ev *groupstate.GroupEvent) error {
	if p.NewOwnerAccount == "" {
		return errors.New("NewOwner_Account is required")
	}
	ev.Owner = p.NewOwnerAccount
	return nil
}

func decodeMemberFieldChanged(p *payload, ev *groupstate.GroupEvent) error {
	if p.MemberAccount == "" {
		return errors.New("Member_Account is required")
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
		return fmt.Errorf("role %q is not Admin or Member", p.Role)
	}
	ev.Members = []groupstate.Member{{UserID: p.MemberAccount, Role: role}}
	return nil
}

// exitReason maps ExitType to a leave reason.
func exitReason(s string) (imv1.LeaveReason, error) {
	switch {
	case strings.EqualFold(s, "Kicked"):
		return imv1.LeaveKicked, nil
	case strings.EqualFold(s, "Quit"):
		return imv1.LeaveQuit, nil
	}
	return "", fmt.Errorf("ExitType %q is not Kicked or Quit", s)
}
