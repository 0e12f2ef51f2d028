package openim

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// sample reads a request body from testdata.
func sample(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// samples maps every command to its body in testdata.
var samples = map[string]string{
	CreateGroup: "create", JoinGroup: "join", QuitGroup: "quit", KickGroup: "kick", DismissGroup: "dismiss",
	SetGroupInfo: "setinfo", TransferGroupOwner: "transfer", SetGroupMemberInfo: "memberinfo",
}

func TestProvider_Decode_everyCommand(t *testing.T) {
	type m = groupstate.Member
	tests := []struct {
		command string
		want    groupstate.GroupEvent
	}{
		{CreateGroup, groupstate.GroupEvent{Kind: imv1.EventCreated, GroupID: "3188466436", Name: "g1", Owner: "u1", Operator: "u1",
			Type: "Work", Members: []m{{UserID: "u1", Role: imv1.RoleOwner}, {UserID: "u2", Role: imv1.RoleMember}, {UserID: "u3", Role: imv1.RoleMember}}}},
		{JoinGroup, groupstate.GroupEvent{Kind: imv1.EventMembersJoined, GroupID: "G001", Operator: "user789", JoinType: "Search", // C3: joinSource
			Members: []m{{UserID: "user789", Role: imv1.RoleMember}}}},
		{QuitGroup, groupstate.GroupEvent{Kind: imv1.EventMembersLeft, GroupID: "G001", Operator: "user123",
			Reason: imv1.LeaveQuit, Members: []m{{UserID: "user123"}}}},
		{KickGroup, groupstate.GroupEvent{Kind: imv1.EventMembersLeft, GroupID: "G001", Reason: imv1.LeaveKicked,
			Message: "Violation of group rules", Members: []m{{UserID: "user123"}, {UserID: "user456"}}}},
		{DismissGroup, groupstate.GroupEvent{Kind: imv1.EventDisbanded, GroupID: "G001", Owner: "u1",
			Members: []m{{UserID: "u1"}, {UserID: "u2"}}}},
		{SetGroupInfo, groupstate.GroupEvent{Kind: imv1.EventInfoChanged, GroupID: "G001", Name: "renamed"}},
		{TransferGroupOwner, groupstate.GroupEvent{Kind: imv1.EventOwnerChanged, GroupID: "G001", Owner: "u2"}},
		{SetGroupMemberInfo, groupstate.GroupEvent{Kind: imv1.EventInfoChanged, GroupID: "G001",
			Members: []m{{UserID: "u2", Role: imv1.RoleAdmin}}}},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			g := NewWithT(t)
			ev, err := Provider{}.Decode(tt.command, sample(t, samples[tt.command]))
			g.Expect(err).NotTo(HaveOccurred())
			tt.want.Provider, tt.want.Command = imv1.ProviderOpenIM, tt.command
			g.Expect(ev).To(Equal(tt.want))
			g.Expect(ev.EventTime.IsZero()).To(BeTrue(), "OpenIM sends no event time; the server stamps arrival")
		})
	}
}

func TestProvider_Decode_acceptsLowerCaseDismiss(t *testing.T) {
	g := NewWithT(t)
	body := `{"callbackCommand":"callbackAfterDismissGroupCommand","groupID":"G001","ownerID":"u1","membersID":[]}`
	ev, err := Provider{}.Decode("callbackAfterDismissGroupCommand", []byte(body))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev.Kind).To(Equal(imv1.EventDisbanded))
	g.Expect(ev.Command).To(Equal(DismissGroup))
	g.Expect(ev.Members).To(BeEmpty(), "members deleted before the callback: the roster is unknown")
}

func TestProvider_Decode_rejectsBadInput(t *testing.T) {
	quitBody := string(sample(t, "quit"))
	tests := []struct {
		name          string
		command, body string
		contains      string
	}{
		{"OpenIM wrong type", KickGroup, `{"groupID":"G001","kickedUserIDs":"user123"}`, "field kickedUserIDs: got a JSON string, want array"},
		{"OpenIM command mismatch", KickGroup, quitBody, "does not match"},
		{"OpenIM join without user", JoinGroup, `{"groupID":"G001"}`, "member user ID is empty"},
		{"OpenIM kick without users", KickGroup, `{"groupID":"G001","kickedUserIDs":[]}`, "kickedUserIDs is empty"},
		{"OpenIM missing group", QuitGroup, `{"userID":"u"}`, "groupID is required"},
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

func TestProvider_Decode_truncatesFreeText(t *testing.T) {
	g := NewWithT(t)
	reason := make([]rune, 2000)
	for i := range reason {
		reason[i] = 'é' // two bytes: truncation must not split it
	}
	body, _ := json.Marshal(map[string]any{"groupID": "G001", "kickedUserIDs": []string{"u"}, "reason": string(reason)})
	ev, err := Provider{}.Decode(KickGroup, body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev.Message).To(HaveLen(groupstate.MaxTextLength))
	g.Expect(ev.Message).To(Equal(string(reason[:groupstate.MaxTextLength/2])))
}

// The replies must have exactly the documented keys, in order.
func TestProvider_Reply(t *testing.T) {
	g := NewWithT(t)
	g.Expect(string(Provider{}.Reply(provider.Outcome{OK: true}))).To(Equal(`{"actionCode":0,"errCode":0,"errMsg":"","errDlt":"","nextCode":0}`))
	g.Expect(string(Provider{}.Reply(provider.Outcome{Code: 400, Message: "bad", Detail: "more"}))).To(Equal(`{"actionCode":1,"errCode":400,"errMsg":"bad","errDlt":"more","nextCode":0}`))
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

func TestProvider_Decode_C1_setGroupInfoExRenames(t *testing.T) {
	for name, groupName := range map[string]string{"bare": `"renamed"`, "wrapped": `{"value":"renamed"}`, "null": `null`} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			body := `{"callbackCommand":"callbackAfterSetGroupInfoExCommand","operationID":"","groupID":"G001","groupName":` + groupName +
				`,"notification":null,"introduction":null,"faceURL":null,"ex":null,"needVerification":null,"lookMemberInfo":null,"applyMemberFriend":null}`
			ev, err := Provider{}.Decode(SetGroupInfoEx, []byte(body))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ev.Kind).To(Equal(imv1.EventInfoChanged))
			if name == "null" {
				g.Expect(ev.Name).To(BeEmpty(), "null means unchanged")
			} else {
				g.Expect(ev.Name).To(Equal("renamed"))
			}
		})
	}
	_, err := Provider{}.Decode(SetGroupInfoEx, []byte(`{"groupID":"G001","groupName":[1]}`))
	NewWithT(t).Expect(err).To(BeAssignableToTypeOf(&provider.DecodeError{}))
}
