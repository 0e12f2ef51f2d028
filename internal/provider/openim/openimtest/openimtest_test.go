package openimtest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"chatgroup.dev/chatgroup-operator/internal/callbacks"
)

func TestSender_Build(t *testing.T) {
	tests := []struct {
		name    string
		action  callbacks.Action
		params  callbacks.Params
		command string
		want    map[string]any
	}{
		{
			name:    "create promotes the group info and lists the owner twice",
			action:  callbacks.Create,
			params:  callbacks.Params{GroupID: "3188466436", GroupName: "g1", Owner: "u1", Users: []string{"u2", "u3"}},
			command: "callbackAfterCreateGroupCommand",
			want: map[string]any{
				"callbackCommand": "callbackAfterCreateGroupCommand", "groupID": "3188466436", "groupName": "g1",
				"notification": "", "introduction": "", "faceURL": "", "ownerUserID": "u1", "createTime": float64(1670574414123),
				"memberCount": float64(3), "ex": "", "status": float64(0), "creatorUserID": "u1", "groupType": float64(2),
				"needVerification": float64(0), "lookMemberInfo": float64(0), "applyMemberFriend": float64(0),
				"notificationUpdateTime": float64(0), "notificationUserID": "",
				"initMemberList": []any{
					map[string]any{"userID": "u1", "roleLevel": float64(100)},
					map[string]any{"userID": "u2", "roleLevel": float64(20)},
					map[string]any{"userID": "u3", "roleLevel": float64(20)},
					map[string]any{"userID": "u1", "roleLevel": float64(20)},
				},
			},
		},
		{
			name:    "join puts the joining user in inviterUserID",
			action:  callbacks.Join,
			params:  callbacks.Params{GroupID: "G001", Users: []string{"user123"}, OperationID: "op-1"},
			command: "callbackAfterJoinGroupCommand",
			want: map[string]any{
				"callbackCommand": "callbackAfterJoinGroupCommand", "operationID": "op-1", "groupID": "G001",
				"reqMessage": "", "joinSource": float64(3), "inviterUserID": "user123",
			},
		},
		{
			name:    "quit names the user",
			action:  callbacks.Quit,
			params:  callbacks.Params{GroupID: "G001", Users: []string{"user123"}},
			command: "callbackAfterQuitGroupCommand",
			want:    map[string]any{"callbackCommand": "callbackAfterQuitGroupCommand", "groupID": "G001", "userID": "user123"},
		},
		{
			name:    "kick lists the kicked users and the reason",
			action:  callbacks.Kick,
			params:  callbacks.Params{GroupID: "G001", Users: []string{"user123", "user456"}, Reason: "Violation of group rules"},
			command: "callbackAfterKickGroupCommand",
			want: map[string]any{
				"callbackCommand": "callbackAfterKickGroupCommand", "groupID": "G001",
				"kickedUserIDs": []any{"user123", "user456"}, "reason": "Violation of group rules",
			},
		},
		{
			name:    "dismiss has the garbled group type and may have no members",
			action:  callbacks.Disband,
			params:  callbacks.Params{GroupID: "G001", Owner: "u1"},
			command: "callbackAfterDisMissGroupCommand",
			want: map[string]any{
				"callbackCommand": "callbackAfterDisMissGroupCommand", "groupID": "G001", "ownerID": "u1",
				"groupType": "\u0002", "membersID": []any{},
			},
		},
		{
			name:    "set group info sends every field, empty or null when unchanged",
			action:  callbacks.Info,
			params:  callbacks.Params{GroupID: "G001", GroupName: "renamed"},
			command: "callbackAfterSetGroupInfoCommand",
			want: map[string]any{
				"callbackCommand": "callbackAfterSetGroupInfoCommand", "operationID": "", "groupID": "G001",
				"groupName": "renamed", "notification": "", "introduction": "", "faceURL": "", "ex": nil,
				"needVerification": nil, "lookMemberInfo": nil, "applyMemberFriend": nil,
			},
		},
		{
			name:    "transfer names the old and new owner",
			action:  callbacks.Owner,
			params:  callbacks.Params{GroupID: "G001", PreviousOwner: "u1", Owner: "u2"},
			command: "callbackAfterTransferGroupOwnerCommand",
			want: map[string]any{
				"callbackCommand": "callbackAfterTransferGroupOwnerCommand", "groupID": "G001",
				"oldOwnerUserID": "u1", "newOwnerUserID": "u2",
			},
		},
		{
			name:    "set member info carries the role level and nulls the rest",
			action:  callbacks.MemberField,
			params:  callbacks.Params{GroupID: "G001", Users: []string{"u2"}, Role: "Admin"},
			command: "callbackAfterSetGroupMemberInfoCommand",
			want: map[string]any{
				"callbackCommand": "callbackAfterSetGroupMemberInfoCommand", "groupID": "G001", "userID": "u2",
				"nickName": nil, "faceURL": nil, "roleLevel": float64(60), "ex": nil,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			tt.params.EventTime = sampleTime
			cbs, err := Sender{}.Build(tt.action, tt.params)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(cbs).To(HaveLen(1))
			g.Expect(cbs[0].Command).To(Equal(tt.command))
			g.Expect(cbs[0].OperationID).NotTo(BeEmpty())
			g.Expect(string(cbs[0].Body)).To(HaveSuffix("}\n"), "json.Encoder ends the body with a newline")
			got := decode(g, cbs[0].Body)
			g.Expect(keys(got)).To(Equal(keys(tt.want)))
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestSender_Build_onePerUser(t *testing.T) {
	g := NewWithT(t)
	cbs, err := Sender{}.Build(callbacks.Join, callbacks.Params{GroupID: "G001", Users: []string{"a", "b"}, OperationID: "op"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cbs).To(HaveLen(2))
	g.Expect(decode(g, cbs[0].Body)).To(HaveKeyWithValue("inviterUserID", "a"))
	g.Expect(decode(g, cbs[1].Body)).To(HaveKeyWithValue("inviterUserID", "b"))
	g.Expect(cbs[0].OperationID).To(Equal("op-0"))
	g.Expect(cbs[1].OperationID).To(Equal("op-1"))

	quits, err := Sender{}.Build(callbacks.Quit, callbacks.Params{GroupID: "G001", Users: []string{"a", "b"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(quits).To(HaveLen(2))
	g.Expect(quits[0].OperationID).NotTo(Equal(quits[1].OperationID), "generated operation IDs are unique")
}

func TestSender_Request(t *testing.T) {
	g := NewWithT(t)
	cbs, err := Sender{}.Build(callbacks.Kick, callbacks.Params{GroupID: "G001", Users: []string{"u"}, OperationID: "op-7"})
	g.Expect(err).NotTo(HaveOccurred())

	req, err := Sender{}.Request(context.Background(), "http://127.0.0.1:8082/", "/callbacks/x", cbs[0])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(req.Method).To(Equal("POST"))
	g.Expect(req.URL.String()).To(Equal("http://127.0.0.1:8082/callbacks/x/callbackAfterKickGroupCommand"))
	g.Expect(req.Header.Get("Content-Type")).To(Equal("application/json; charset=utf-8"))
	g.Expect(req.Header.Get("operationID")).To(Equal("op-7"))

	withQuery, err := Sender{ContentTypeQuery: true}.Request(context.Background(), "http://h", "/p", cbs[0])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(withQuery.URL.String()).To(Equal("http://h/p/callbackAfterKickGroupCommand?contenttype=json"))
}

func TestSender_CheckReply(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{name: "all zero is success", body: `{"actionCode":0,"errCode":0,"errMsg":"","errDlt":"","nextCode":0}`},
		{name: "a non-zero actionCode is a failure", body: `{"actionCode":1,"errCode":503,"errMsg":"busy","errDlt":"","nextCode":0}`, wantErr: `"busy"`},
		{name: "nextCode 1 refuses", body: `{"actionCode":0,"errCode":0,"errMsg":"","errDlt":"","nextCode":1}`, wantErr: "failure"},
		{name: "a missing actionCode is a failure", body: `{}`, wantErr: "actionCode missing"},
		{name: "a non-JSON body is a failure", body: `<html>`, wantErr: "not OpenIM's JSON reply"},
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

// sampleTime is the documented samples' EventTime, 1670574414123.
var sampleTime = time.UnixMilli(1670574414123)
