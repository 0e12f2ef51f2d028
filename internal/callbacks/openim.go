package callbacks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/webhookserver"
)

// OperationIDHeader carries OpenIM's operation ID, for tracing.
const OperationIDHeader = "operationID"

var openIMCommands = map[Action]string{
	Create:      webhookserver.OpenIMCreateGroup,
	Join:        webhookserver.OpenIMJoinGroup,
	Quit:        webhookserver.OpenIMQuitGroup,
	Kick:        webhookserver.OpenIMKickGroup,
	Disband:     webhookserver.OpenIMDismissGroup,
	Info:        webhookserver.OpenIMSetGroupInfo,
	Owner:       webhookserver.OpenIMTransferGroupOwner,
	MemberField: webhookserver.OpenIMSetGroupMemberInfo,
}

// OpenIM role levels and group constants (openimsdk/protocol).
const (
	openIMRoleOwner    = 100
	openIMRoleAdmin    = 60
	openIMRoleMember   = 20
	openIMWorkingGroup = 2 // the only type CreateGroup accepts
	openIMJoinBySearch = 3
)

// OpenIM builds OpenIM server callbacks.
type OpenIM struct {
	// ContentTypeQuery appends ?contenttype=json, as OpenIM's docs show.
	// The server code sends no query, so the default leaves it out.
	ContentTypeQuery bool
}

var _ Provider = OpenIM{}

// Name implements Provider.
func (OpenIM) Name() imv1.Provider { return imv1.ProviderOpenIM }

// Command implements Provider.
func (OpenIM) Command(a Action) (string, error) {
	cmd, ok := openIMCommands[a]
	if !ok {
		return "", fmt.Errorf("unknown action %q: use one of %s", a, actionList())
	}
	return cmd, nil
}

// openIMMember is an entry of initMemberList (apistruct.GroupAddMemberInfo).
type openIMMember struct {
	UserID    string `json:"userID"`
	RoleLevel int32  `json:"roleLevel"`
}

// The request bodies, with the JSON tags of OpenIM's request structs.
type (
	// CallbackAfterCreateGroupReq: sdkws.GroupInfo's fields promoted to
	// the top level, then initMemberList.
	openIMCreateBody struct {
		CallbackCommand        string         `json:"callbackCommand"`
		GroupID                string         `json:"groupID"`
		GroupName              string         `json:"groupName"`
		Notification           string         `json:"notification"`
		Introduction           string         `json:"introduction"`
		FaceURL                string         `json:"faceURL"`
		OwnerUserID            string         `json:"ownerUserID"`
		CreateTime             int64          `json:"createTime"`
		MemberCount            uint32         `json:"memberCount"`
		Ex                     string         `json:"ex"`
		Status                 int32          `json:"status"`
		CreatorUserID          string         `json:"creatorUserID"`
		GroupType              int32          `json:"groupType"`
		NeedVerification       int32          `json:"needVerification"`
		LookMemberInfo         int32          `json:"lookMemberInfo"`
		ApplyMemberFriend      int32          `json:"applyMemberFriend"`
		NotificationUpdateTime int64          `json:"notificationUpdateTime"`
		NotificationUserID     string         `json:"notificationUserID"`
		InitMemberList         []openIMMember `json:"initMemberList"`
	}
	// CallbackAfterJoinGroupReq: the joining user is in inviterUserID.
	openIMJoinBody struct {
		CallbackCommand string `json:"callbackCommand"`
		OperationID     string `json:"operationID"`
		GroupID         string `json:"groupID"`
		ReqMessage      string `json:"reqMessage"`
		JoinSource      int32  `json:"joinSource"`
		InviterUserID   string `json:"inviterUserID"`
	}
	// CallbackQuitGroupReq.
	openIMQuitBody struct {
		CallbackCommand string `json:"callbackCommand"`
		GroupID         string `json:"groupID"`
		UserID          string `json:"userID"`
	}
	// CallbackKillGroupMemberReq.
	openIMKickBody struct {
		CallbackCommand string   `json:"callbackCommand"`
		GroupID         string   `json:"groupID"`
		KickedUserIDs   []string `json:"kickedUserIDs"`
		Reason          string   `json:"reason"`
	}
	// CallbackDisMissGroupReq.
	openIMDismissBody struct {
		CallbackCommand string   `json:"callbackCommand"`
		GroupID         string   `json:"groupID"`
		OwnerID         string   `json:"ownerID"`
		GroupType       string   `json:"groupType"`
		MembersID       []string `json:"membersID"`
	}
	// CallbackAfterSetGroupInfoReq: unchanged strings are empty and
	// unchanged optional values null.
	openIMSetInfoBody struct {
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
	openIMTransferBody struct {
		CallbackCommand string `json:"callbackCommand"`
		GroupID         string `json:"groupID"`
		OldOwnerUserID  string `json:"oldOwnerUserID"`
		NewOwnerUserID  string `json:"newOwnerUserID"`
	}
	// CallbackAfterSetGroupMemberInfoReq: null when unchanged.
	openIMSetMemberInfoBody struct {
		CallbackCommand string  `json:"callbackCommand"`
		GroupID         string  `json:"groupID"`
		UserID          string  `json:"userID"`
		Nickname        *string `json:"nickName"`
		FaceURL         *string `json:"faceURL"`
		RoleLevel       *int32  `json:"roleLevel"`
		Ex              *string `json:"ex"`
	}
)

// Build implements Provider. OpenIM joins and quits are per user (JoinGroup
// and QuitGroup act for the calling user), so those give one callback per
// user, each with its own operation ID.
func (o OpenIM) Build(a Action, p Params) ([]Callback, error) {
	cmd, err := o.Command(a)
	if err != nil {
		return nil, err
	}
	if p.GroupID == "" {
		return nil, fmt.Errorf("%s needs a group ID", a)
	}
	if a == Join || a == Quit {
		return o.buildPerUser(a, cmd, p)
	}
	body, err := o.body(a, cmd, &p)
	if err != nil {
		return nil, err
	}
	cb, err := openIMCallback(cmd, p.OperationID, body)
	if err != nil {
		return nil, err
	}
	return []Callback{cb}, nil
}

func (o OpenIM) buildPerUser(a Action, cmd string, p Params) ([]Callback, error) {
	if len(p.Users) == 0 {
		return nil, fmt.Errorf("%s needs at least one user", a)
	}
	cbs := make([]Callback, 0, len(p.Users))
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
		var body any = openIMQuitBody{cmd, p.GroupID, user}
		if a == Join {
			body = openIMJoinBody{cmd, opID, p.GroupID, "", openIMJoinBySearch, user}
		}
		cb, err := openIMCallback(cmd, opID, body)
		if err != nil {
			return nil, err
		}
		cbs = append(cbs, cb)
	}
	return cbs, nil
}

func (o OpenIM) body(a Action, cmd string, p *Params) (any, error) {
	switch a {
	case Create:
		return openIMCreate(cmd, p)
	case Kick:
		if len(p.Users) == 0 {
			return nil, fmt.Errorf("%s needs at least one user", a)
		}
		return openIMKickBody{cmd, p.GroupID, p.Users, p.Reason}, nil
	case Disband:
		// groupType is string(int32(2)), which Go turns into the rune
		// U+0002, and membersID is empty when OpenIM deleted the members
		// first (protocols.md 2.4): both as OpenIM really sends them.
		members := p.Users
		if members == nil {
			members = []string{}
		}
		return openIMDismissBody{cmd, p.GroupID, p.Owner, string(rune(openIMWorkingGroup)), members}, nil
	case Info:
		if p.GroupName == "" && p.Notification == "" {
			return nil, fmt.Errorf("%s needs a new group name or notification", a)
		}
		// OpenIM leaves operationID empty in this body.
		return openIMSetInfoBody{CallbackCommand: cmd, GroupID: p.GroupID, GroupName: p.GroupName, Notification: p.Notification}, nil
	case Owner:
		if p.Owner == "" {
			return nil, fmt.Errorf("%s needs the new owner", a)
		}
		return openIMTransferBody{cmd, p.GroupID, p.PreviousOwner, p.Owner}, nil
	default: // MemberField; Command rejected unknown actions
		return openIMMemberInfo(a, cmd, p)
	}
}

// openIMCreate renders a create callback. OpenIM builds initMemberList as
// the owner (100), then every user of the group at 20, the owner and the
// creator included, so the owner appears twice.
func openIMCreate(cmd string, p *Params) (openIMCreateBody, error) {
	owner, creator, err := p.creator()
	if err != nil {
		return openIMCreateBody{}, err
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
	list := []openIMMember{{UserID: owner, RoleLevel: openIMRoleOwner}}
	for _, u := range everyone {
		list = append(list, openIMMember{UserID: u, RoleLevel: openIMRoleMember})
	}
	return openIMCreateBody{
		CallbackCommand: cmd,
		GroupID:         p.GroupID,
		GroupName:       name,
		OwnerUserID:     owner,
		CreateTime:      p.eventTime().UnixMilli(),
		MemberCount:     uint32(len(everyone)),
		CreatorUserID:   creator,
		GroupType:       openIMWorkingGroup,
		InitMemberList:  list,
	}, nil
}

func openIMMemberInfo(a Action, cmd string, p *Params) (openIMSetMemberInfoBody, error) {
	member, err := p.firstUser(a)
	if err != nil {
		return openIMSetMemberInfoBody{}, err
	}
	role, err := memberFieldRole(p)
	if err != nil {
		return openIMSetMemberInfoBody{}, err
	}
	body := openIMSetMemberInfoBody{CallbackCommand: cmd, GroupID: p.GroupID, UserID: member}
	if p.NameCard != "" {
		body.Nickname = &p.NameCard
	}
	if role != "" {
		level := int32(openIMRoleMember)
		if role == "Admin" {
			level = openIMRoleAdmin
		}
		body.RoleLevel = &level
	}
	return body, nil
}

// openIMCallback encodes body as OpenIM does, with json.Encoder, which
// ends the body with a newline.
func openIMCallback(cmd, operationID string, body any) (Callback, error) {
	if operationID == "" {
		operationID = newOperationID()
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(body); err != nil {
		return Callback{}, fmt.Errorf("encoding the %s body: %w", cmd, err)
	}
	return Callback{Command: cmd, Body: buf.Bytes(), OperationID: operationID}, nil
}

// Request implements Provider: a POST to <base><path>/<command> with
// OpenIM's headers. OpenIM signs nothing; the unguessable path is the
// secret.
func (o OpenIM) Request(ctx context.Context, base, path string, cb Callback) (*http.Request, error) {
	u, err := callbackURL(base, path)
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
		req.Header.Set(OperationIDHeader, cb.OperationID)
	}
	return req, nil
}

// openIMReply is CommonCallbackResp.
type openIMReply struct {
	ActionCode *int32 `json:"actionCode"`
	ErrCode    int32  `json:"errCode"`
	ErrMsg     string `json:"errMsg"`
	ErrDlt     string `json:"errDlt"`
	NextCode   int32  `json:"nextCode"`
}

// CheckReply implements Provider: success is actionCode 0 and errCode 0,
// without nextCode 1 (refuse to continue).
func (OpenIM) CheckReply(body []byte) error {
	var r openIMReply
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
