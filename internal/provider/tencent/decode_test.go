package tencent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// sample reads a documented request body from testdata.
func sample(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// samples maps every command to its documented body.
var samples = map[string]string{
	CreateGroup: "create", NewMemberJoin: "join", MemberExit: "exit", GroupDestroyed: "destroy",
	GroupInfoChanged: "info", ChangeGroupOwner: "owner", MemberFieldChanged: "memberfield",
}

var seedTime = time.UnixMilli(1670574414123).UTC()

func TestProvider_Decode_everyCommand(t *testing.T) {
	members := func(role imv1.MemberRole, ids ...string) []groupstate.Member {
		out := make([]groupstate.Member, len(ids))
		for i, id := range ids {
			out[i] = groupstate.Member{UserID: id, Role: role}
		}
		return out
	}
	tests := []struct {
		command string
		want    groupstate.GroupEvent
	}{
		{CreateGroup, groupstate.GroupEvent{Kind: imv1.EventCreated, GroupID: "@TGS#2J4SZEAEL", Operator: "group_root",
			Owner: "leckie", Name: "MyFirstGroup", Type: "Public",
			Members: append(members(imv1.RoleMember, "bob", "peter"), groupstate.Member{UserID: "leckie", Role: imv1.RoleOwner})}},
		{NewMemberJoin, groupstate.GroupEvent{Kind: imv1.EventMembersJoined, GroupID: "@TGS#2J4SZEAEL", Operator: "leckie",
			Type: "Public", JoinType: "Apply", Members: members(imv1.RoleMember, "jared", "tommy")}}, // C3: JoinType
		{MemberExit, groupstate.GroupEvent{Kind: imv1.EventMembersLeft, GroupID: "@TGS#2J4SZEAEL", Operator: "leckie",
			Type: "Public", Reason: imv1.LeaveKicked, Members: members("", "jared", "tommy")}},
		{GroupDestroyed, groupstate.GroupEvent{Kind: imv1.EventDisbanded, GroupID: "@TGS#2J4SZEAEL", Owner: "leckie",
			Name: "MyFirstGroup", Type: "Public", Members: members("", "leckie", "peter", "bob")}},
		{GroupInfoChanged, groupstate.GroupEvent{Kind: imv1.EventInfoChanged, GroupID: "@TGS#2J4SZEAEL", Operator: "leckie", Type: "Public",
			Notification: ptr("NewNotification")}}, // C3: the profile fields
		{ChangeGroupOwner, groupstate.GroupEvent{Kind: imv1.EventOwnerChanged, GroupID: "@TGS#2TTV7VSII", Operator: "admin",
			Owner: "user2", Type: "Public"}},
		{MemberFieldChanged, groupstate.GroupEvent{Kind: imv1.EventInfoChanged, GroupID: "@TGS#xxxx", Operator: "admin",
			Type: "Community", Members: members(imv1.RoleAdmin, "123456")}},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			g := NewWithT(t)
			ev, err := Provider{}.Decode(tt.command, sample(t, samples[tt.command]))
			g.Expect(err).NotTo(HaveOccurred())
			tt.want.Provider, tt.want.Command, tt.want.EventTime = imv1.ProviderTencent, tt.command, seedTime
			g.Expect(ev).To(Equal(tt.want))
		})
	}
}

func ptr(s string) *string { return &s }

func TestProvider_Decode_quirks(t *testing.T) {
	decode := func(body string) (groupstate.GroupEvent, error) {
		return Provider{}.Decode(NewMemberJoin, []byte(body))
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
		ev, err := Provider{}.Decode(MemberExit, []byte(`{"GroupId":"g","ExitType":"Quit","ExitMemberList":[{"Member_Account":"a"}]}`))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ev.Reason).To(Equal(imv1.LeaveQuit))
	})
	t.Run("unknown commands are not errors", func(t *testing.T) {
		g := NewWithT(t)
		_, err := Provider{}.Decode("Group.CallbackAfterGroupFull", []byte(`{"GroupId":"g"}`))
		g.Expect(err).To(MatchError(provider.ErrUnknownCommand))
	})
}

func TestProvider_Decode_rejectsBadInput(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'x'
	}
	exitBody := string(sample(t, "exit"))
	tests := []struct {
		name          string
		command, body string
		contains      string
	}{
		{"not JSON", NewMemberJoin, `{"GroupId":`, "malformed JSON"},
		{"array body", NewMemberJoin, `[]`, "want an object"},
		{"wrong type", NewMemberJoin, `{"GroupId":42}`, "field GroupId: got a JSON number, want string"},
		{"missing group", NewMemberJoin, `{"NewMemberList":[{"Member_Account":"a"}]}`, "GroupId is required"},
		{"command mismatch", NewMemberJoin, exitBody, "does not match"},
		{"bad EventTime", NewMemberJoin, `{"GroupId":"g","NewMemberList":[{"Member_Account":"a"}],"EventTime":"soon"}`, "not a millisecond timestamp"},
		{"EventTime past year 9999", NewMemberJoin, `{"GroupId":"g","NewMemberList":[{"Member_Account":"a"}],"EventTime":99999999999999999}`, "not a millisecond timestamp"},
		{"empty member", NewMemberJoin, `{"GroupId":"g","NewMemberList":[{"Member_Account":""}]}`, "NewMemberList[0].Member_Account is empty"},
		{"no joiners", NewMemberJoin, `{"GroupId":"g","NewMemberList":[]}`, "NewMemberList is empty"},
		{"bad ExitType", MemberExit, `{"GroupId":"g","ExitType":"Left","ExitMemberList":[{"Member_Account":"a"}]}`, "ExitType"},
		{"bad role", MemberFieldChanged, `{"GroupId":"g","Member_Account":"a","Role":"Owner"}`, "role"},
		{"ID too long", NewMemberJoin, `{"GroupId":"` + string(long) + `","NewMemberList":[{"Member_Account":"a"}]}`, "longer than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := Provider{}.Decode(tt.command, []byte(tt.body))
			var decodeErr *provider.DecodeError
			g.Expect(errors.As(err, &decodeErr)).To(BeTrue(), "want a *DecodeError, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tt.contains))
		})
	}
}

// The replies must have exactly the documented keys, in order.
func TestProvider_Reply(t *testing.T) {
	g := NewWithT(t)
	g.Expect(string(Provider{}.Reply(provider.Outcome{OK: true}))).To(Equal(`{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}`))
	g.Expect(string(Provider{}.Reply(provider.Outcome{Code: 401, Message: "bad sign"}))).To(Equal(`{"ActionStatus":"FAIL","ErrorInfo":"bad sign","ErrorCode":401}`))
}

func TestSign(t *testing.T) {
	g := NewWithT(t)
	// The documented example: Token=xxxxyyyy, RequestTime=1669872112.
	g.Expect(Sign("xxxxyyyy", "1669872112")).To(Equal("17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"))
}

func BenchmarkDecode(b *testing.B) {
	body := sample(b, "create")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := (Provider{}).Decode(CreateGroup, body); err != nil {
			b.Fatal(err)
		}
	}
}
