package webhookserver

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// Request bodies from the providers' pages (protocols.md and the seed
// pages), verbatim except for removed comments.
var (
	tencentCreateBody = `{
    "CallbackCommand": "Group.CallbackAfterCreateGroup",
    "GroupId" : "@TGS#2J4SZEAEL",
    "Operator_Account": "group_root",
    "Owner_Account": "leckie",
    "Type": "Public",
    "Name": "MyFirstGroup",
    "MemberList": [
        { "Member_Account": "bob" },
        { "Member_Account": "peter" }
    ],
    "UserDefinedDataList": [
        { "Key": "UserDefined1", "Value": "hello" },
        { "Key": "UserDefined2", "Value": "world" }
    ],
    "EventTime":"1670574414123"
}`
	tencentJoinBody = `{
    "CallbackCommand": "Group.CallbackAfterNewMemberJoin",
    "GroupId" : "@TGS#2J4SZEAEL",
    "Type": "Public",
    "JoinType": "Apply",
    "Operator_Account": "leckie",
    "NewMemberList": [
        { "Member_Account": "jared" },
        { "Member_Account": "tommy" }
    ],
    "EventTime":"1670574414123"
}`
	tencentDestroyBody = `{
    "CallbackCommand": "Group.CallbackAfterGroupDestroyed",
    "GroupId" : "@TGS#2J4SZEAEL",
    "Type": "Public",
    "Owner_Account": "leckie",
    "Name": "MyFirstGroup",
    "MemberList" : [
    {
    "Member_Account": "leckie"
    },
    {
    "Member_Account": "peter"
    },
    {
    "Member_Account": "bob"
    }
    ],
    "EventTime":"1670574414123"
    }`
	tencentInfoBody = `{
    "CallbackCommand": "Group.CallbackAfterGroupInfoChanged",
    "GroupId" : "@TGS#2J4SZEAEL",
    "Type": "Public",
    "Operator_Account": "leckie",
    "Notification": "NewNotification",
    "EventTime":"1670574414123"
}`
	tencentOwnerBody = `{
    "CallbackCommand": "Group.CallbackAfterChangeGroupOwner",
    "GroupId": "@TGS#2TTV7VSII",
    "Type": "Public",
    "Operator_Account": "admin",
    "OldOwner_Account": "user1",
    "NewOwner_Account": "user2",
    "EventTime":"1670574414123"
}`
	tencentMemberFieldBody = `{
    "CallbackCommand": "Group.CallbackAfterMemberFieldChanged",
    "GroupId": "@TGS#xxxx",
    "Type": "Community",
    "Operator_Account": "admin",
    "Member_Account": "123456",
    "Role": "Admin",
    "NameCard": "jacky",
    "EventTime":"1670574414123"
}`

	openIMCreateBody = `{"callbackCommand":"callbackAfterCreateGroupCommand","groupID":"3188466436","groupName":"g1","notification":"","introduction":"","faceURL":"","ownerUserID":"u1","createTime":1700000000000,"memberCount":3,"ex":"","status":0,"creatorUserID":"u1","groupType":2,"needVerification":0,"lookMemberInfo":0,"applyMemberFriend":0,"notificationUpdateTime":0,"notificationUserID":"","initMemberList":[{"userID":"u1","roleLevel":100},{"userID":"u2","roleLevel":20},{"userID":"u3","roleLevel":20},{"userID":"u1","roleLevel":20}]}`
	openIMKickBody   = `{
"callbackCommand": "callbackAfterKickGroupCommand",
"groupID": "G001",
"kickedUserIDs": ["user123", "user456"],
"reason": "Violation of group rules"
}`
	// The remaining OpenIM bodies follow the request structs' JSON tags, as
	// encoding/json writes them (with the trailing newline).
	openIMJoinBody     = `{"callbackCommand":"callbackAfterJoinGroupCommand","operationID":"op1","groupID":"G001","reqMessage":"hi","joinSource":3,"inviterUserID":"user789"}` + "\n"
	openIMDismissBody  = `{"callbackCommand":"callbackAfterDisMissGroupCommand","groupID":"G001","ownerID":"u1","groupType":"\u0002","membersID":["u1","u2"]}` + "\n"
	openIMSetInfoBody  = `{"callbackCommand":"callbackAfterSetGroupInfoCommand","operationID":"","groupID":"G001","groupName":"renamed","notification":"","introduction":"","faceURL":"","ex":null,"needVerification":null,"lookMemberInfo":null,"applyMemberFriend":null}` + "\n"
	openIMTransferBody = `{"callbackCommand":"callbackAfterTransferGroupOwnerCommand","groupID":"G001","oldOwnerUserID":"u1","newOwnerUserID":"u2"}` + "\n"
	openIMMemberBody   = `{"callbackCommand":"callbackAfterSetGroupMemberInfoCommand","groupID":"G001","userID":"u2","nickName":null,"faceURL":null,"roleLevel":60,"ex":null}` + "\n"
)

var seedTime = time.UnixMilli(1670574414123).UTC()

func TestTencentCodec_decodesEveryCommand(t *testing.T) {
	members := func(role imv1.MemberRole, ids ...string) []Member {
		out := make([]Member, len(ids))
		for i, id := range ids {
			out[i] = Member{UserID: id, Role: role}
		}
		return out
	}
	tests := []struct {
		command, body string
		want          GroupEvent
	}{
		{TencentCreateGroup, tencentCreateBody, GroupEvent{Kind: imv1.EventCreated, GroupID: "@TGS#2J4SZEAEL", Operator: "group_root",
			Owner: "leckie", Name: "MyFirstGroup", Type: "Public",
			Members: append(members(imv1.RoleMember, "bob", "peter"), Member{UserID: "leckie", Role: imv1.RoleOwner})}},
		{TencentNewMemberJoin, tencentJoinBody, GroupEvent{Kind: imv1.EventMembersJoined, GroupID: "@TGS#2J4SZEAEL", Operator: "leckie",
			Type: "Public", Members: members(imv1.RoleMember, "jared", "tommy")}},
		{TencentMemberExit, tencentExitBody, GroupEvent{Kind: imv1.EventMembersLeft, GroupID: "@TGS#2J4SZEAEL", Operator: "leckie",
			Type: "Public", Reason: imv1.LeaveKicked, Members: members("", "jared", "tommy")}},
		{TencentGroupDestroyed, tencentDestroyBody, GroupEvent{Kind: imv1.EventDisbanded, GroupID: "@TGS#2J4SZEAEL", Owner: "leckie",
			Name: "MyFirstGroup", Type: "Public", Members: members("", "leckie", "peter", "bob")}},
		{TencentGroupInfoChanged, tencentInfoBody, GroupEvent{Kind: imv1.EventInfoChanged, GroupID: "@TGS#2J4SZEAEL", Operator: "leckie", Type: "Public"}},
		{TencentChangeGroupOwner, tencentOwnerBody, GroupEvent{Kind: imv1.EventOwnerChanged, GroupID: "@TGS#2TTV7VSII", Operator: "admin",
			Owner: "user2", Type: "Public"}},
		{TencentMemberFieldChanged, tencentMemberFieldBody, GroupEvent{Kind: imv1.EventInfoChanged, GroupID: "@TGS#xxxx", Operator: "admin",
			Type: "Community", Members: members(imv1.RoleAdmin, "123456")}},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			g := NewWithT(t)
			ev, err := TencentCodec{}.Decode(tt.command, []byte(tt.body))
			g.Expect(err).NotTo(HaveOccurred())
			tt.want.Provider, tt.want.Command, tt.want.EventTime = imv1.ProviderTencent, tt.command, seedTime
			g.Expect(ev).To(Equal(tt.want))
		})
	}
}

func TestTencentCodec_quirks(t *testing.T) {
	decode := func(body string) (GroupEvent, error) {
		return TencentCodec{}.Decode(TencentNewMemberJoin, []byte(body))
	}
	const prefix = `{"GroupId":"g","NewMemberList":[{"Member_Account":"a"}]`
	t.Run("EventTime as a number", func(t *testing.T) {
		g := NewWithT(t)
		ev, err := decode(prefix + `,"EventTime":1670574414123}`)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ev.EventTime).To(Equal(seedTime))
	})
	t.Run("EventTime absent, null or empty", func(t *testing.T) {
		g := NewWithT(t)
		for _, tail := range []string{`}`, `,"EventTime":null}`, `,"EventTime":""}`} {
			ev, err := decode(prefix + tail)
			g.Expect(err).NotTo(HaveOccurred(), tail)
			g.Expect(ev.EventTime.IsZero()).To(BeTrue(), tail)
		}
	})
	t.Run("legacy group types", func(t *testing.T) {
		g := NewWithT(t)
		for legacy, current := range map[string]string{"Private": "Work", "ChatRoom": "Meeting", "Work": "Work", "Meeting": "Meeting", "AVChatRoom": "AVChatRoom"} {
			ev, err := decode(prefix + `,"Type":"` + legacy + `"}`)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ev.Type).To(Equal(current), legacy)
		}
	})
	t.Run("ExitType Quit", func(t *testing.T) {
		g := NewWithT(t)
		ev, err := TencentCodec{}.Decode(TencentMemberExit, []byte(`{"GroupId":"g","ExitType":"Quit","ExitMemberList":[{"Member_Account":"a"}]}`))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ev.Reason).To(Equal(imv1.LeaveQuit))
	})
	t.Run("unknown commands are not errors", func(t *testing.T) {
		g := NewWithT(t)
		_, err := TencentCodec{}.Decode("Group.CallbackAfterGroupFull", []byte(`{"GroupId":"g"}`))
		g.Expect(err).To(MatchError(ErrUnknownCommand))
	})
}

func TestOpenIMCodec_decodesEveryCommand(t *testing.T) {
	tests := []struct {
		command, body string
		want          GroupEvent
	}{
		{OpenIMCreateGroup, openIMCreateBody, GroupEvent{Kind: imv1.EventCreated, GroupID: "3188466436", Name: "g1", Owner: "u1", Operator: "u1",
			Type: "Work", Members: []Member{{"u1", imv1.RoleOwner}, {"u2", imv1.RoleMember}, {"u3", imv1.RoleMember}}}},
		{OpenIMJoinGroup, openIMJoinBody, GroupEvent{Kind: imv1.EventMembersJoined, GroupID: "G001", Operator: "user789",
			Members: []Member{{"user789", imv1.RoleMember}}}},
		{OpenIMQuitGroup, openIMQuitBody, GroupEvent{Kind: imv1.EventMembersLeft, GroupID: "G001", Operator: "user123",
			Reason: imv1.LeaveQuit, Members: []Member{{UserID: "user123"}}}},
		{OpenIMKickGroup, openIMKickBody, GroupEvent{Kind: imv1.EventMembersLeft, GroupID: "G001", Reason: imv1.LeaveKicked,
			Message: "Violation of group rules", Members: []Member{{UserID: "user123"}, {UserID: "user456"}}}},
		{OpenIMDismissGroup, openIMDismissBody, GroupEvent{Kind: imv1.EventDisbanded, GroupID: "G001", Owner: "u1",
			Members: []Member{{UserID: "u1"}, {UserID: "u2"}}}},
		{OpenIMSetGroupInfo, openIMSetInfoBody, GroupEvent{Kind: imv1.EventInfoChanged, GroupID: "G001", Name: "renamed"}},
		{OpenIMTransferGroupOwner, openIMTransferBody, GroupEvent{Kind: imv1.EventOwnerChanged, GroupID: "G001", Owner: "u2"}},
		{OpenIMSetGroupMemberInfo, openIMMemberBody, GroupEvent{Kind: imv1.EventInfoChanged, GroupID: "G001",
			Members: []Member{{"u2", imv1.RoleAdmin}}}},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			g := NewWithT(t)
			ev, err := OpenIMCodec{}.Decode(tt.command, []byte(tt.body))
			g.Expect(err).NotTo(HaveOccurred())
			tt.want.Provider, tt.want.Command = imv1.ProviderOpenIM, tt.command
			g.Expect(ev).To(Equal(tt.want))
			g.Expect(ev.EventTime.IsZero()).To(BeTrue(), "OpenIM sends no event time; the server stamps arrival")
		})
	}
}

func TestOpenIMCodec_acceptsLowerCaseDismiss(t *testing.T) {
	g := NewWithT(t)
	body := `{"callbackCommand":"callbackAfterDismissGroupCommand","groupID":"G001","ownerID":"u1","membersID":[]}`
	ev, err := OpenIMCodec{}.Decode("callbackAfterDismissGroupCommand", []byte(body))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev.Kind).To(Equal(imv1.EventDisbanded))
	g.Expect(ev.Command).To(Equal(OpenIMDismissGroup))
	g.Expect(ev.Members).To(BeEmpty(), "members deleted before the callback: the roster is unknown")
}

func TestCodecs_rejectBadInput(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		name          string
		codec         Codec
		command, body string
		contains      string
	}{
		{"not JSON", TencentCodec{}, TencentNewMemberJoin, `{"GroupId":`, "malformed JSON"},
		{"array body", TencentCodec{}, TencentNewMemberJoin, `[]`, "want an object"},
		{"wrong type", TencentCodec{}, TencentNewMemberJoin, `{"GroupId":42}`, "field GroupId: got a JSON number, want string"},
		{"missing group", TencentCodec{}, TencentNewMemberJoin, `{"NewMemberList":[{"Member_Account":"a"}]}`, "GroupId is required"},
		{"command mismatch", TencentCodec{}, TencentNewMemberJoin, tencentExitBody, "does not match"},
		{"bad EventTime", TencentCodec{}, TencentNewMemberJoin, `{"GroupId":"g","NewMemberList":[{"Member_Account":"a"}],"EventTime":"soon"}`, "not a millisecond timestamp"},
		{"EventTime past year 9999", TencentCodec{}, TencentNewMemberJoin, `{"GroupId":"g","NewMemberList":[{"Member_Account":"a"}],"EventTime":99999999999999999}`, "not a millisecond timestamp"},
		{"empty member", TencentCodec{}, TencentNewMemberJoin, `{"GroupId":"g","NewMemberList":[{"Member_Account":""}]}`, "NewMemberList[0].Member_Account is empty"},
		{"no joiners", TencentCodec{}, TencentNewMemberJoin, `{"GroupId":"g","NewMemberList":[]}`, "NewMemberList is empty"},
		{"bad ExitType", TencentCodec{}, TencentMemberExit, `{"GroupId":"g","ExitType":"Left","ExitMemberList":[{"Member_Account":"a"}]}`, "ExitType"},
		{"bad role", TencentCodec{}, TencentMemberFieldChanged, `{"GroupId":"g","Member_Account":"a","Role":"Owner"}`, "role"},
		{"ID too long", TencentCodec{}, TencentNewMemberJoin, `{"GroupId":"` + string(long) + `","NewMemberList":[{"Member_Account":"a"}]}`, "longer than 256"},
		{"OpenIM wrong type", OpenIMCodec{}, OpenIMKickGroup, `{"groupID":"G001","kickedUserIDs":"user123"}`, "field kickedUserIDs: got a JSON string, want array"},
		{"OpenIM command mismatch", OpenIMCodec{}, OpenIMKickGroup, openIMQuitBody, "does not match"},
		{"OpenIM join without user", OpenIMCodec{}, OpenIMJoinGroup, `{"groupID":"G001"}`, "member user ID is empty"},
		{"OpenIM kick without users", OpenIMCodec{}, OpenIMKickGroup, `{"groupID":"G001","kickedUserIDs":[]}`, "kickedUserIDs is empty"},
		{"OpenIM missing group", OpenIMCodec{}, OpenIMQuitGroup, `{"userID":"u"}`, "groupID is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := tt.codec.Decode(tt.command, []byte(tt.body))
			var decodeErr *DecodeError
			g.Expect(errors.As(err, &decodeErr)).To(BeTrue(), "want a *DecodeError, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tt.contains))
		})
	}
}

func TestCodecs_truncateFreeText(t *testing.T) {
	g := NewWithT(t)
	reason := make([]rune, 2000)
	for i := range reason {
		reason[i] = 'é' // two bytes: truncation must not split it
	}
	body, _ := json.Marshal(map[string]any{"groupID": "G001", "kickedUserIDs": []string{"u"}, "reason": string(reason)})
	ev, err := OpenIMCodec{}.Decode(OpenIMKickGroup, body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev.Message).To(HaveLen(maxTextLength))
	g.Expect(ev.Message).To(Equal(string(reason[:maxTextLength/2])))
}

// The replies must have exactly the documented keys, in order.
func TestCodecs_replyShapes(t *testing.T) {
	g := NewWithT(t)
	g.Expect(string(TencentCodec{}.Reply(Outcome{OK: true}))).To(Equal(`{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}`))
	g.Expect(string(TencentCodec{}.Reply(Outcome{Code: 401, Message: "bad sign"}))).To(Equal(`{"ActionStatus":"FAIL","ErrorInfo":"bad sign","ErrorCode":401}`))
	g.Expect(string(OpenIMCodec{}.Reply(Outcome{OK: true}))).To(Equal(`{"actionCode":0,"errCode":0,"errMsg":"","errDlt":"","nextCode":0}`))
	g.Expect(string(OpenIMCodec{}.Reply(Outcome{Code: 400, Message: "bad", Detail: "more"}))).To(Equal(`{"actionCode":1,"errCode":400,"errMsg":"bad","errDlt":"more","nextCode":0}`))
}

func BenchmarkTencentDecode(b *testing.B) {
	body := []byte(tencentCreateBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := (TencentCodec{}).Decode(TencentCreateGroup, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenIMDecode(b *testing.B) {
	body := []byte(openIMCreateBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := (OpenIMCodec{}).Decode(OpenIMCreateGroup, body); err != nil {
			b.Fatal(err)
		}
	}
}
