package tencenttest

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
)

// sampleTime is the documented samples' EventTime, 1670574414123.
var sampleTime = time.UnixMilli(1670574414123)

// decode parses a body into a generic map, failing the test on bad JSON.
func decode(g Gomega, body []byte) map[string]any {
	var m map[string]any
	g.Expect(json.Unmarshal(body, &m)).To(Succeed(), "body: %s", body)
	return m
}

func keys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func accounts(users ...string) []any {
	out := make([]any, len(users))
	for i, u := range users {
		out[i] = map[string]any{"Member_Account": u}
	}
	return out
}

func TestSender_Build(t *testing.T) {
	tests := []struct {
		name    string
		action  callbacks.Action
		params  callbacks.Params
		command string
		// want is the whole decoded body: the documented field names and
		// nothing else.
		want map[string]any
	}{
		{
			name:    "create lists the initial members and names the owner",
			action:  callbacks.Create,
			params:  callbacks.Params{GroupID: "@TGS#2J4SZEAEL", Users: []string{"bob", "peter"}, Operator: "group_root", Owner: "leckie", GroupName: "MyFirstGroup"},
			command: "Group.CallbackAfterCreateGroup",
			want: map[string]any{
				"CallbackCommand": "Group.CallbackAfterCreateGroup", "GroupId": "@TGS#2J4SZEAEL", "Operator_Account": "group_root",
				"Owner_Account": "leckie", "Type": "Public", "Name": "MyFirstGroup", "MemberList": accounts("bob", "peter"),
				"EventTime": "1670574414123",
			},
		},
		{
			name:    "a single user joining on their own is an application",
			action:  callbacks.Join,
			params:  callbacks.Params{GroupID: "@TGS#2J4SZEAEL", Users: []string{"jared"}},
			command: "Group.CallbackAfterNewMemberJoin",
			want: map[string]any{
				"CallbackCommand": "Group.CallbackAfterNewMemberJoin", "GroupId": "@TGS#2J4SZEAEL", "Type": "Public",
				"JoinType": "Apply", "Operator_Account": "jared", "NewMemberList": accounts("jared"), "EventTime": "1670574414123",
			},
		},
		{
			name:    "users added by someone else are invited",
			action:  callbacks.Join,
			params:  callbacks.Params{GroupID: "@TGS#2J4SZEAEL", Users: []string{"jared", "tommy"}, Operator: "leckie"},
			command: "Group.CallbackAfterNewMemberJoin",
			want: map[string]any{
				"CallbackCommand": "Group.CallbackAfterNewMemberJoin", "GroupId": "@TGS#2J4SZEAEL", "Type": "Public",
				"JoinType": "Invited", "Operator_Account": "leckie", "NewMemberList": accounts("jared", "tommy"), "EventTime": "1670574414123",
			},
		},
		{
			name:    "quit is a member exit by the leaving user",
			action:  callbacks.Quit,
			params:  callbacks.Params{GroupID: "@TGS#2J4SZEAEL", Users: []string{"jared"}},
			command: "Group.CallbackAfterMemberExit",
			want: map[string]any{
				"CallbackCommand": "Group.CallbackAfterMemberExit", "GroupId": "@TGS#2J4SZEAEL", "Type": "Public",
				"ExitType": "Quit", "Operator_Account": "jared", "ExitMemberList": accounts("jared"), "EventTime": "1670574414123",
			},
		},
		{
			name:    "kick is a member exit of type Kicked by the operator",
			action:  callbacks.Kick,
			params:  callbacks.Params{GroupID: "@TGS#2J4SZEAEL", Users: []string{"jared", "tommy"}, Operator: "leckie", Reason: "not sent by Tencent"},
			command: "Group.CallbackAfterMemberExit",
			want: map[string]any{
				"CallbackCommand": "Group.CallbackAfterMemberExit", "GroupId": "@TGS#2J4SZEAEL", "Type": "Public",
				"ExitType": "Kicked", "Operator_Account": "leckie", "ExitMemberList": accounts("jared", "tommy"), "EventTime": "1670574414123",
			},
		},
		{
			name:    "disband carries the owner, the name and the roster",
			action:  callbacks.Disband,
			params:  callbacks.Params{GroupID: "@TGS#2J4SZEAEL", Users: []string{"leckie", "peter", "bob"}, Owner: "leckie", GroupName: "MyFirstGroup"},
			command: "Group.CallbackAfterGroupDestroyed",
			want: map[string]any{
				"CallbackCommand": "Group.CallbackAfterGroupDestroyed", "GroupId": "@TGS#2J4SZEAEL", "Type": "Public",
				"Owner_Account": "leckie", "Name": "MyFirstGroup", "MemberList": accounts("leckie", "peter", "bob"), "EventTime": "1670574414123",
			},
		},
		{
			name:    "info changed carries only the changed fields",
			action:  callbacks.Info,
			params:  callbacks.Params{GroupID: "@TGS#2J4SZEAEL", Operator: "leckie", Notification: "NewNotification"},
			command: "Group.CallbackAfterGroupInfoChanged",
			want: map[string]any{
				"CallbackCommand": "Group.CallbackAfterGroupInfoChanged", "GroupId": "@TGS#2J4SZEAEL", "Type": "Public",
				"Operator_Account": "leckie", "Notification": "NewNotification", "EventTime": "1670574414123",
			},
		},
		{
			name:    "owner change names the old and the new owner",
			action:  callbacks.Owner,
			params:  callbacks.Params{GroupID: "@TGS#2TTV7VSII", Operator: "admin", PreviousOwner: "user1", Owner: "user2"},
			command: "Group.CallbackAfterChangeGroupOwner",
			want: map[string]any{
				"CallbackCommand": "Group.CallbackAfterChangeGroupOwner", "GroupId": "@TGS#2TTV7VSII", "Type": "Public",
				"Operator_Account": "admin", "OldOwner_Account": "user1", "NewOwner_Account": "user2", "EventTime": "1670574414123",
			},
		},
		{
			name:    "member field change carries the member, role and name card",
			action:  callbacks.MemberField,
			params:  callbacks.Params{GroupID: "@TGS#xxxx", GroupType: "Community", Users: []string{"123456"}, Role: "admin", NameCard: "jacky"},
			command: "Group.CallbackAfterMemberFieldChanged",
			want: map[string]any{
				"CallbackCommand": "Group.CallbackAfterMemberFieldChanged", "GroupId": "@TGS#xxxx", "Type": "Community",
				"Operator_Account": "admin", "Member_Account": "123456", "Role": "Admin", "NameCard": "jacky", "EventTime": "1670574414123",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			tt.params.EventTime = sampleTime
			cbs, err := Sender{AppID: "888888"}.Build(tt.action, tt.params)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(cbs).To(HaveLen(1))
			g.Expect(cbs[0].Command).To(Equal(tt.command))
			got := decode(g, cbs[0].Body)
			g.Expect(keys(got)).To(Equal(keys(tt.want)))
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestSender_Build_numericEventTime(t *testing.T) {
	g := NewWithT(t)
	cbs, err := Sender{NumericEventTime: true}.Build(callbacks.Join, callbacks.Params{GroupID: "g", Users: []string{"u"}, EventTime: sampleTime})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(cbs[0].Body)).To(ContainSubstring(`"EventTime":1670574414123`))
}

func TestSender_Build_errors(t *testing.T) {
	tests := []struct {
		name   string
		action callbacks.Action
		params callbacks.Params
		want   string
	}{
		{name: "a group ID is required", action: callbacks.Join, params: callbacks.Params{Users: []string{"u"}}, want: "group ID"},
		{name: "join needs users", action: callbacks.Join, params: callbacks.Params{GroupID: "g"}, want: "at least one user"},
		{name: "kick needs users", action: callbacks.Kick, params: callbacks.Params{GroupID: "g"}, want: "needs a user"},
		{name: "info needs a change", action: callbacks.Info, params: callbacks.Params{GroupID: "g"}, want: "name or notification"},
		{name: "owner needs the new owner", action: callbacks.Owner, params: callbacks.Params{GroupID: "g"}, want: "new owner"},
		{name: "a role must be Admin or Member", action: callbacks.MemberField, params: callbacks.Params{GroupID: "g", Users: []string{"u"}, Role: "Owner"}, want: "not Admin or Member"},
		{name: "unknown actions are refused", action: "promote", params: callbacks.Params{GroupID: "g"}, want: "unknown action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := Sender{}.Build(tt.action, tt.params)
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

func TestSender_URL(t *testing.T) {
	g := NewWithT(t)
	u, err := Sender{AppID: "888888", Token: "xxxxyyyy"}.URL("http://127.0.0.1:8082/", "/callbacks/abc", tencent.NewMemberJoin, time.Unix(1669872112, 0))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u).To(Equal("http://127.0.0.1:8082/callbacks/abc?SdkAppid=888888&CallbackCommand=Group.CallbackAfterNewMemberJoin" +
		"&contenttype=json&ClientIP=127.0.0.1&OptPlatform=RESTAPI" +
		"&Sign=17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061&RequestTime=1669872112"))

	unsigned, err := Sender{AppID: "888888"}.URL("http://h", "/p", tencent.MemberExit, time.Now())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(unsigned).NotTo(ContainSubstring("Sign="))
	g.Expect(unsigned).NotTo(ContainSubstring("RequestTime="))

	_, err = Sender{}.URL("127.0.0.1:8082", "/p", tencent.MemberExit, time.Now())
	g.Expect(err).To(MatchError(ContainSubstring("http://")))
}

func TestSender_Request(t *testing.T) {
	g := NewWithT(t)
	tc := Sender{AppID: "1400000000", Token: "tok"}
	cbs, err := tc.Build(callbacks.Kick, callbacks.Params{GroupID: "@TGS#1", Users: []string{"u1"}})
	g.Expect(err).NotTo(HaveOccurred())
	before := time.Now().Unix()
	req, err := tc.Request(context.Background(), "http://127.0.0.1:8082", "/callbacks/x", cbs[0])
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(req.Method).To(Equal("POST"))
	g.Expect(req.URL.Path).To(Equal("/callbacks/x"))
	q := req.URL.Query()
	g.Expect(q.Get("SdkAppid")).To(Equal("1400000000"))
	g.Expect(q.Get("CallbackCommand")).To(Equal(tencent.MemberExit))
	g.Expect(q.Get("contenttype")).To(Equal("json"))
	rt := q.Get("RequestTime")
	secs, err := strconv.ParseInt(rt, 10, 64)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(secs).To(BeNumerically("~", before, 2), "RequestTime is the current Unix second")
	g.Expect(q.Get("Sign")).To(Equal(tencent.Sign("tok", rt)))
	g.Expect(req.Header.Get("Content-Type")).To(Equal("application/json"))
}

func TestSender_CheckReply(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{name: "OK with code 0 is success", body: `{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}`},
		{name: "FAIL is a failure", body: `{"ActionStatus":"FAIL","ErrorInfo":"busy","ErrorCode":1}`, wantErr: `"busy"`},
		{name: "a missing ErrorCode is a failure", body: `{"ActionStatus":"OK"}`, wantErr: "ErrorCode missing"},
		{name: "a non-JSON body is a failure", body: `not json`, wantErr: "not Tencent's JSON reply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := Sender{}.CheckReply([]byte(tt.body))
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
		})
	}
}
