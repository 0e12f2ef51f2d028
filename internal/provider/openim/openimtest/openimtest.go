// Package openimtest builds OpenIM server callbacks exactly as OpenIM sends
// them: the URL, headers and JSON bodies with the JSON tags of OpenIM's
// request structs. Tests, the callback sender (hack/send-callback), the
// load generator and the e2e test use it to talk to the operator as OpenIM
// would. It also reads the payloads in ../testdata.
package openimtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim"
)

var commands = map[callbacks.Action]string{
	callbacks.Create:      openim.CreateGroup,
	callbacks.Join:        openim.JoinGroup,
	callbacks.Quit:        openim.QuitGroup,
	callbacks.Kick:        openim.KickGroup,
	callbacks.Disband:     openim.DismissGroup,
	callbacks.Info:        openim.SetGroupInfo,
	callbacks.Owner:       openim.TransferGroupOwner,
	callbacks.MemberField: openim.SetGroupMemberInfo,
}

// joinBySearch is the joinSource of a user who found the group and joined.
const joinBySearch = 3

// Sender builds OpenIM server callbacks.
type Sender struct {
	// ContentTypeQuery appends ?contenttype=json, as OpenIM's docs show.
	// The server code sends no query, so the default leaves it out.
	ContentTypeQuery bool
}

var _ callbacks.Sender = Sender{}

// SampleAppID is the appID the documented samples and tests give OpenIM
// receivers. OpenIM sends no appID; the receiver's names the server.
const SampleAppID = "openim-1"

// New returns a Sender. OpenIM signs nothing: appID and token are unused.
func New(_, _ string) callbacks.Sender { return Sender{} }

// Name implements callbacks.Sender.
func (Sender) Name() imv1.Provider { return openim.Name }

// Command implements callbacks.Sender.
func (Sender) Command(a callbacks.Action) (string, error) {
	cmd, ok := commands[a]
	if !ok {
		return "", fmt.Errorf("unknown action %q: use one of %s", a, callbacks.ActionList())
	}
	return cmd, nil
}

// member is an entry of initMemberList (apistruct.GroupAddMemberInfo).
type member struct {
	UserID    string `json:"userID"`
	RoleLevel int32  `json:"roleLevel"`
}

// The request bodies, with the JSON tags of OpenIM's request structs.
type (
	// CallbackAfterCreateGroupReq: sdkws.GroupInfo's fields promoted to
	// the top level, then initMemberList.
	createBody struct {
		CallbackCommand        string   `json:"callbackCommand"`
		GroupID                string   `json:"groupID"`
		GroupName              string   `json:"groupName"`
		Notification           string   `json:"notification"`
		Introduction           string   `json:"introduction"`
		FaceURL                string   `json:"faceURL"`
		OwnerUserID            string   `json:"ownerUserID"`
		CreateTime             int64    `json:"createTime"`
		MemberCount            uint32   `json:"memberCount"`
		Ex                     string   `json:"ex"`
		Status                 int32    `json:"status"`
		CreatorUserID          string   `json:"creatorUserID"`
		GroupType              int32    `json:"groupType"`
		NeedVerification       int32    `json:"needVerification"`
		LookMemberInfo         int32    `json:"lookMemberInfo"`
		ApplyMemberFriend      int32    `json:"applyMemberFriend"`
		NotificationUpdateTime int64    `json:"notificationUpdateTime"`
		NotificationUserID     string   `json:"notificationUserID"`
		InitMemberList         []member `json:"initMemberList"`
	}
	// CallbackAfterJoinGroupReq: the joining user is in inviterUserID.
	joinBody struct {
		CallbackCommand string `json:"callbackCommand"`
		OperationID     string `json:"operationID"`
		GroupID         string `json:"groupID"`
		ReqMessage      string `json:"reqMessage"`
		JoinSource      int32  `json:"joinSource"`
		InviterUserID   string `json:"inviterUserID"`
	}
	// CallbackQuitGroupReq.
	quitBody struct {
		CallbackCommand string `json:"callbackCommand"`
		GroupID         string `json:"groupID"`
		UserID          string `json:"userID"`
	}
	// CallbackKillGroupMemberReq.
	kickBody struct {
		CallbackCommand string   `json:"callbackCommand"`
		GroupID         string   `json:"groupID"`
		KickedUserIDs   []string `json:"kickedUserIDs"`
		Reason          string   `json:"reason"`
	}
	// CallbackDisMissGroupReq.
	dismissBody struct {
		CallbackCommand string   `json:"callbackCommand"`
		GroupID         string   `json:"groupID"`
		OwnerID         string   `json:"ownerID"`
		GroupType       string   `json:"groupType"`
		MembersID       []string `json:"membersID"`
	}
	// CallbackAfterSetGroupInfoReq: unchanged strings are empty and
	// unchanged optional values null.
	setInfoBody struct {
		CallbackCommand   string  `json:"callbackCommand"`
		OperationID       string  `json:"operationID"`
		GroupID           string  `json:"groupID"`
		GroupName         string  `json:"groupName"`
		Notification      string  `json:"notification"`
		Introduction      string  `json:"introduction"`
		FaceURL           string  `json:"faceURL"`
		Ex                *string `json:"ex"`
		NeedVerification  *int32  `json:"needVerification"`
		LookMemberInfo    *int32  `json:"lookMemberInfo"`
		ApplyMemberFriend *int32  `json:"applyMemberFriend"`
	}
	// CallbackTransferGroupOwnerReq.
	transferBody struct {
		CallbackCommand string `json:"callbackCommand"`
		GroupID         string `json:"groupID"`
		OldOwnerUserID  string `json:"oldOwnerUserID"`
		NewOwnerUserID  string `json:"newOwnerUserID"`
	}
	// CallbackAfterSetGroupMemberInfoReq: null when unchanged.
	setMemberInfoBody struct {
		CallbackCommand string  `json:"callbackCommand"`
		GroupID         string  `json:"groupID"`
		UserID          string  `json:"userID"`
		Nickname        *string `json:"nickName"`
		FaceURL         *string `json:"faceURL"`
		RoleLevel       *int32  `json:"roleLevel"`
		Ex              *string `json:"ex"`
	}
)

// Build implements callbacks.Sender. OpenIM joins and quits are per user (JoinGroup
// and QuitGroup act for the calling user), so those give one callback per
// user, each with its own operation ID.
func (o Sender) Build(a callbacks.Action, p callbacks.Params) ([]callbacks.Callback, error) {
	cmd, err := o.Command(a)
	if err != nil {
		return nil, err
	}
	if p.GroupID == "" {
		return nil, fmt.Errorf("%s needs a group ID", a)
	}
	if a == callbacks.Join || a == callbacks.Quit {
		return o.buildPerUser(a, cmd, p)
	}
	body, err := o.body(a, cmd, &p)
	if err != nil {
		return nil, err
	}
	cb, err := encode(cmd, p.OperationID, body)
	if err != nil {
		return nil, err
	}
	return []callbacks.Callback{cb}, nil
}

func (o Sender) buildPerUser(a callbacks.Action, cmd string, p callbacks.Params) ([]callbacks.Callback, error) {
	if len(p.Users) == 0 {
		return nil, fmt.Errorf("%s needs at least one user", a)
	}
	cbs := make([]callbacks.Callback, 0, len(p.Users))
	for i, user := range p.Users {
		if user == "" {
			return nil, fmt.Errorf("%s: user %d is empty", a, i)
		}
		opID := p.OperationID
		if opID != "" && len(p.Users) > 1 {
			opID += "-" + strconv.Itoa(i)
		}
		if opID == "" {
			opID = newOperationID()
		}
		var body any = quitBody{cmd, p.GroupID, user}
		if a == callbacks.Join {
			body = joinBody{cmd, opID, p.GroupID, "", joinBySearch, user}
		}
		cb, err := encode(cmd, opID, body)
		if err != nil {
			return nil, err
		}
		cbs = append(cbs, cb)
	}
	return cbs, nil
}

func (o Sender) body(a callbacks.Action, cmd string, p *callbacks.Params) (any, error) {
	switch a {
	case callbacks.Create:
		return create(cmd, p)
	case callbacks.Kick:
		if len(p.Users) == 0 {
			return nil, fmt.Errorf("%s needs at least one user", a)
		}
		return kickBody{cmd, p.GroupID, p.Users, p.Reason}, nil
	case callbacks.Disband:
		// groupType is string(int32(2)), which Go turns into the rune
		// U+0002, and membersID is empty when OpenIM deleted the members
		// first (protocols.md 2.4): both as OpenIM really sends them.
		members := p.Users
		if members == nil {
			members = []string{}
		}
		return dismissBody{cmd, p.GroupID, p.Owner, string(rune(openim.WorkingGroupType)), members}, nil
	case callbacks.Info:
		if p.GroupName == "" && p.Notification == "" {
			return nil, fmt.Errorf("%s needs a new group name or notification", a)
		}
		// OpenIM leaves operationID empty in this body.
		return setInfoBody{CallbackCommand: cmd, GroupID: p.GroupID, GroupName: p.GroupName, Notification: p.Notification}, nil
	case callbacks.Owner:
		if p.Owner == "" {
			return nil, fmt.Errorf("%s needs the new owner", a)
		}
		return transferBody{cmd, p.GroupID, p.PreviousOwner, p.Owner}, nil
	default: // MemberField; Command rejected unknown actions
		return memberInfo(a, cmd, p)
	}
}

// create renders a create callback. OpenIM builds initMemberList as
// the owner (100), then every user of the group at 20, the owner and the
// creator included, so the owner appears twice.
func create(cmd string, p *callbacks.Params) (createBody, error) {
	owner, creator, err := p.Creator()
	if err != nil {
		return createBody{}, err
	}
	name := p.GroupName
	if name == "" {
		name = p.GroupID
	}
	// The members, then the owner and the creator, as in the documented
	// example: [{u1,100},{u2,20},{u3,20},{u1,20}].
	var everyone []string
	seen := make(map[string]bool, len(p.Users)+2)
	for _, u := range append(append(slices.Clip(p.Users), owner), creator) {
		if u != "" && !seen[u] {
			seen[u] = true
			everyone = append(everyone, u)
		}
	}
	list := []member{{UserID: owner, RoleLevel: openim.RoleLevelOwner}}
	for _, u := range everyone {
		list = append(list, member{UserID: u, RoleLevel: openim.RoleLevelMember})
	}
	return createBody{
		CallbackCommand: cmd,
		GroupID:         p.GroupID,
		GroupName:       name,
		OwnerUserID:     owner,
		CreateTime:      p.EventTimeOrNow().UnixMilli(),
		MemberCount:     uint32(len(everyone)),
		CreatorUserID:   creator,
		GroupType:       openim.WorkingGroupType,
		InitMemberList:  list,
	}, nil
}

func memberInfo(a callbacks.Action, cmd string, p *callbacks.Params) (setMemberInfoBody, error) {
	member, err := p.FirstUser(a)
	if err != nil {
		return setMemberInfoBody{}, err
	}
	role, err := p.MemberFieldRole()
	if err != nil {
		return setMemberInfoBody{}, err
	}
	body := setMemberInfoBody{CallbackCommand: cmd, GroupID: p.GroupID, UserID: member}
	if p.NameCard != "" {
		body.Nickname = &p.NameCard
	}
	if role != "" {
		level := int32(openim.RoleLevelMember)
		if role == "Admin" {
			level = openim.RoleLevelAdmin
		}
		body.RoleLevel = &level
	}
	return body, nil
}

// encode encodes body as OpenIM does, with json.Encoder, which
// ends the body with a newline.
func encode(cmd, operationID string, body any) (callbacks.Callback, error) {
	if operationID == "" {
		operationID = newOperationID()
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(body); err != nil {
		return callbacks.Callback{}, fmt.Errorf("encoding the %s body: %w", cmd, err)
	}
	return callbacks.Callback{Command: cmd, Body: buf.Bytes(), OperationID: operationID}, nil
}

// Request implements callbacks.Sender: a POST to <base><path>/<command> with
// OpenIM's headers. OpenIM signs nothing; the unguessable path is the
// secret.
func (o Sender) Request(ctx context.Context, base, path string, cb callbacks.Callback) (*http.Request, error) {
	u, err := callbacks.URL(base, path)
	if err != nil {
		return nil, err
	}
	u += "/" + cb.Command
	if o.ContentTypeQuery {
		u += "?contenttype=json"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(cb.Body))
	if err != nil {
		return nil, fmt.Errorf("building the %s request: %w", cb.Command, err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if cb.OperationID != "" {
		req.Header.Set(openim.OperationIDHeader, cb.OperationID)
	}
	return req, nil
}

// reply is CommonCallbackResp.
type reply struct {
	ActionCode *int32 `json:"actionCode"`
	ErrCode    int32  `json:"errCode"`
	ErrMsg     string `json:"errMsg"`
	ErrDlt     string `json:"errDlt"`
	NextCode   int32  `json:"nextCode"`
}

// CheckReply implements callbacks.Sender: success is actionCode 0 and errCode 0,
// without nextCode 1 (refuse to continue).
func (Sender) CheckReply(body []byte) error {
	var r reply
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("reply is not OpenIM's JSON reply: %w", err)
	}
	if r.ActionCode == nil || *r.ActionCode != 0 || r.ErrCode != 0 || r.NextCode == 1 {
		code := "missing"
		if r.ActionCode != nil {
			code = strconv.Itoa(int(*r.ActionCode))
		}
		return fmt.Errorf("reply reports failure: actionCode %s, errCode %d, errMsg %q, errDlt %q", code, r.ErrCode, r.ErrMsg, r.ErrDlt)
	}
	return nil
}

// Invalid implements callbacks.Sender. OpenIM signs nothing (its path is
// the credential), so the request carries a payload of the wrong type.
func (o Sender) Invalid(ctx context.Context, base, path string, cb callbacks.Callback) (*http.Request, error) {
	cb.Body = []byte(`{"groupID":42}`)
	return o.Request(ctx, base, path, cb)
}

// RefusesReplays implements callbacks.Sender: OpenIM signs nothing, so
// nothing tells a replay from a retry.
func (Sender) RefusesReplays() bool { return false }

// opSeq makes generated operation IDs unique within the process.
var opSeq atomic.Uint64

// newOperationID returns an ID in the style of OpenIM's: decimal
// milliseconds, made unique here by a sequence number.
func newOperationID() string {
	return strconv.FormatInt(time.Now().UnixMilli(), 10) + "-" + strconv.FormatUint(opSeq.Add(1), 10)
}
