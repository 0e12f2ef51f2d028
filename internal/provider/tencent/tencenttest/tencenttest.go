// Package tencenttest builds Tencent Cloud Chat callbacks exactly as the
// platform sends them: the URL, query parameters, signature and JSON
// bodies, following docs/protocols.md in the shared design docs field for
// field. Tests, the callback sender (hack/send-callback), the load
// generator and the e2e test use it to talk to the operator as Tencent
// would. It also reads the documented payloads in ../testdata.
package tencenttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
)

// SampleAppID is the SdkAppid of the documented samples, which tests give
// their Tencent receivers.
const SampleAppID = "1400000000"

// action is one row of the action table: the command an action is sent
// as, and how its body is rendered.
type action struct {
	command string
	encode  func(a callbacks.Action, c common, p *callbacks.Params) (any, error)
}

// actions is the action table. Quit and Kick are both
// Group.CallbackAfterMemberExit, told apart by ExitType.
var actions = map[callbacks.Action]action{
	callbacks.Create:      {tencent.CreateGroup, encodeCreate},
	callbacks.Join:        {tencent.NewMemberJoin, encodeJoin},
	callbacks.Quit:        {tencent.MemberExit, encodeExit},
	callbacks.Kick:        {tencent.MemberExit, encodeExit},
	callbacks.Disband:     {tencent.GroupDestroyed, encodeDestroyed},
	callbacks.Info:        {tencent.GroupInfoChanged, encodeInfo},
	callbacks.Owner:       {tencent.ChangeGroupOwner, encodeOwner},
	callbacks.MemberField: {tencent.MemberFieldChanged, encodeMemberField},
}

// Sender builds Tencent Cloud Chat callbacks.
type Sender struct {
	// AppID is the SdkAppid query parameter.
	AppID string
	// Token is the console's webhook authentication token. When set,
	// requests carry RequestTime and Sign; when empty they are unsigned,
	// as with authentication turned off.
	Token string
	// ClientIP and OptPlatform fill the query parameters of the same names.
	// Defaults: 127.0.0.1 and RESTAPI (a change made through the REST API).
	ClientIP, OptPlatform string
	// NumericEventTime sends EventTime as a JSON number. The documented
	// samples quote it ("1670574414123") while the field tables say
	// Integer; the default follows the samples.
	NumericEventTime bool
}

var _ callbacks.Sender = Sender{}

// New returns a Sender for a receiver's appID and token.
func New(appID, token string) callbacks.Sender { return Sender{AppID: appID, Token: token} }

// Name implements callbacks.Sender.
func (Sender) Name() imv1.Provider { return tencent.Name }

// Command implements callbacks.Sender. Quit and Kick are both
// Group.CallbackAfterMemberExit, told apart by ExitType.
func (Sender) Command(a callbacks.Action) (string, error) {
	act, ok := actions[a]
	if !ok {
		return "", fmt.Errorf("unknown action %q: use one of %s", a, callbacks.ActionList())
	}
	return act.command, nil
}

// member is an entry of a member list.
type member struct {
	MemberAccount string `json:"Member_Account"`
}

func memberList(users []string) []member {
	ms := make([]member, len(users))
	for i, u := range users {
		ms[i] = member{MemberAccount: u}
	}
	return ms
}

// eventTime is EventTime in milliseconds, quoted unless numeric.
type eventTime struct {
	ms      int64
	numeric bool
}

func (t eventTime) MarshalJSON() ([]byte, error) {
	s := strconv.FormatInt(t.ms, 10)
	if t.numeric {
		return []byte(s), nil
	}
	return []byte(`"` + s + `"`), nil
}

// The request bodies, one struct per command with the documented fields in
// the documented order.
type (
	createBody struct {
		CallbackCommand string    `json:"CallbackCommand"`
		GroupID         string    `json:"GroupId"`
		Operator        string    `json:"Operator_Account"`
		Owner           string    `json:"Owner_Account"`
		Type            string    `json:"Type"`
		Name            string    `json:"Name"`
		MemberList      []member  `json:"MemberList"`
		EventTime       eventTime `json:"EventTime"`
	}
	joinBody struct {
		CallbackCommand string    `json:"CallbackCommand"`
		GroupID         string    `json:"GroupId"`
		Type            string    `json:"Type"`
		JoinType        string    `json:"JoinType"`
		Operator        string    `json:"Operator_Account"`
		NewMemberList   []member  `json:"NewMemberList"`
		EventTime       eventTime `json:"EventTime"`
	}
	exitBody struct {
		CallbackCommand string    `json:"CallbackCommand"`
		GroupID         string    `json:"GroupId"`
		Type            string    `json:"Type"`
		ExitType        string    `json:"ExitType"`
		Operator        string    `json:"Operator_Account"`
		ExitMemberList  []member  `json:"ExitMemberList"`
		EventTime       eventTime `json:"EventTime"`
	}
	destroyedBody struct {
		CallbackCommand string    `json:"CallbackCommand"`
		GroupID         string    `json:"GroupId"`
		Type            string    `json:"Type"`
		Owner           string    `json:"Owner_Account"`
		Name            string    `json:"Name"`
		MemberList      []member  `json:"MemberList"`
		EventTime       eventTime `json:"EventTime"`
	}
	// Only the changed profile fields are present.
	infoBody struct {
		CallbackCommand string    `json:"CallbackCommand"`
		GroupID         string    `json:"GroupId"`
		Type            string    `json:"Type"`
		Operator        string    `json:"Operator_Account"`
		Name            string    `json:"Name,omitempty"`
		Notification    string    `json:"Notification,omitempty"`
		EventTime       eventTime `json:"EventTime"`
	}
	ownerBody struct {
		CallbackCommand string    `json:"CallbackCommand"`
		GroupID         string    `json:"GroupId"`
		Type            string    `json:"Type"`
		Operator        string    `json:"Operator_Account"`
		OldOwner        string    `json:"OldOwner_Account"`
		NewOwner        string    `json:"NewOwner_Account"`
		EventTime       eventTime `json:"EventTime"`
	}
	// Role and NameCard are present only when they changed.
	memberFieldBody struct {
		CallbackCommand string    `json:"CallbackCommand"`
		GroupID         string    `json:"GroupId"`
		Type            string    `json:"Type"`
		Operator        string    `json:"Operator_Account"`
		Member          string    `json:"Member_Account"`
		Role            string    `json:"Role,omitempty"`
		NameCard        string    `json:"NameCard,omitempty"`
		EventTime       eventTime `json:"EventTime"`
	}
)

// Build implements callbacks.Sender. Tencent sends one callback per change, with
// every affected member in it.
func (t Sender) Build(a callbacks.Action, p callbacks.Params) ([]callbacks.Callback, error) {
	cmd, err := t.Command(a)
	if err != nil {
		return nil, err
	}
	if p.GroupID == "" {
		return nil, fmt.Errorf("%s needs a group ID", a)
	}
	body, err := t.body(a, cmd, &p)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s body: %w", cmd, err)
	}
	return []callbacks.Callback{{Command: cmd, Body: b}}, nil
}

// common are the values every body has.
type common struct {
	command, groupType string
	at                 eventTime
}

func (t Sender) body(a callbacks.Action, cmd string, p *callbacks.Params) (any, error) {
	groupType := p.GroupType
	if groupType == "" {
		groupType = "Public"
	}
	at := eventTime{ms: p.EventTimeOrNow().UnixMilli(), numeric: t.NumericEventTime}
	return actions[a].encode(a, common{cmd, groupType, at}, p)
}

func encodeCreate(_ callbacks.Action, c common, p *callbacks.Params) (any, error) {
	owner, operator, err := p.Creator()
	if err != nil {
		return nil, err
	}
	name := p.GroupName
	if name == "" {
		name = p.GroupID
	}
	return createBody{c.command, p.GroupID, operator, owner, c.groupType, name, memberList(p.Users), c.at}, nil
}

func encodeJoin(a callbacks.Action, c common, p *callbacks.Params) (any, error) {
	if len(p.Users) == 0 {
		return nil, fmt.Errorf("%s needs at least one user", a)
	}
	// A single user who asks to join is an application; anything else (an
	// admin adding users) is an invitation.
	joinType, operator := "Invited", p.OperatorOr(callbacks.DefaultOperator)
	if len(p.Users) == 1 && (p.Operator == "" || p.Operator == p.Users[0]) {
		joinType, operator = "Apply", p.Users[0]
	}
	return joinBody{c.command, p.GroupID, c.groupType, joinType, operator, memberList(p.Users), c.at}, nil
}

func encodeExit(a callbacks.Action, c common, p *callbacks.Params) (any, error) {
	first, err := p.FirstUser(a)
	if err != nil {
		return nil, err
	}
	exitType, operator := "Quit", p.OperatorOr(first)
	if a == callbacks.Kick {
		exitType, operator = "Kicked", p.OperatorOr(callbacks.DefaultOperator)
	}
	return exitBody{c.command, p.GroupID, c.groupType, exitType, operator, memberList(p.Users), c.at}, nil
}

func encodeDestroyed(_ callbacks.Action, c common, p *callbacks.Params) (any, error) {
	return destroyedBody{c.command, p.GroupID, c.groupType, p.Owner, p.GroupName, memberList(p.Users), c.at}, nil
}

func encodeInfo(a callbacks.Action, c common, p *callbacks.Params) (any, error) {
	if p.GroupName == "" && p.Notification == "" {
		return nil, fmt.Errorf("%s needs a new group name or notification", a)
	}
	return infoBody{c.command, p.GroupID, c.groupType, p.OperatorOr(callbacks.DefaultOperator), p.GroupName, p.Notification, c.at}, nil
}

func encodeOwner(a callbacks.Action, c common, p *callbacks.Params) (any, error) {
	if p.Owner == "" {
		return nil, fmt.Errorf("%s needs the new owner", a)
	}
	operator := p.OperatorOr(p.PreviousOwner)
	if operator == "" {
		operator = callbacks.DefaultOperator
	}
	return ownerBody{c.command, p.GroupID, c.groupType, operator, p.PreviousOwner, p.Owner, c.at}, nil
}

func encodeMemberField(a callbacks.Action, c common, p *callbacks.Params) (any, error) {
	member, err := p.FirstUser(a)
	if err != nil {
		return nil, err
	}
	role, err := p.MemberFieldRole()
	if err != nil {
		return nil, err
	}
	return memberFieldBody{c.command, p.GroupID, c.groupType, p.OperatorOr(callbacks.DefaultOperator), member, role, p.NameCard, c.at}, nil
}

// Request implements callbacks.Sender: a POST to
// <base><path>?SdkAppid=..&CallbackCommand=..&contenttype=json&ClientIP=..&OptPlatform=..
// followed by &Sign=..&RequestTime=.. when a token is set, signed now.
func (t Sender) Request(ctx context.Context, base, path string, cb callbacks.Callback) (*http.Request, error) {
	u, err := t.URL(base, path, cb.Command, time.Now())
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(cb.Body))
	if err != nil {
		return nil, fmt.Errorf("building the %s request: %w", cb.Command, err)
	}
	// Tencent does not document its Content-Type; JSON is what it sends.
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// URL is the callback URL for a command signed at requestTime, with the
// query parameters in the documented order.
func (t Sender) URL(base, path, command string, requestTime time.Time) (string, error) {
	u, err := callbacks.URL(base, path)
	if err != nil {
		return "", err
	}
	clientIP, platform := t.ClientIP, t.OptPlatform
	if clientIP == "" {
		clientIP = "127.0.0.1"
	}
	if platform == "" {
		platform = "RESTAPI"
	}
	var q strings.Builder
	param := func(k, v string) {
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString(k + "=" + url.QueryEscape(v))
	}
	param("SdkAppid", t.AppID)
	param("CallbackCommand", command)
	param("contenttype", "json")
	param("ClientIP", clientIP)
	param("OptPlatform", platform)
	if t.Token != "" {
		rt := strconv.FormatInt(requestTime.Unix(), 10)
		param("Sign", tencent.Sign(t.Token, rt))
		param("RequestTime", rt)
	}
	return u + "?" + q.String(), nil
}

// reply is the documented response of every "after" callback.
type reply struct {
	ActionStatus string `json:"ActionStatus"`
	ErrorCode    *int   `json:"ErrorCode"`
	ErrorInfo    string `json:"ErrorInfo"`
}

// CheckReply implements callbacks.Sender: success is ActionStatus OK with
// ErrorCode 0.
func (Sender) CheckReply(body []byte) error {
	var r reply
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("reply is not Tencent's JSON reply: %w", err)
	}
	if r.ActionStatus != "OK" || r.ErrorCode == nil || *r.ErrorCode != 0 {
		code := "missing"
		if r.ErrorCode != nil {
			code = strconv.Itoa(*r.ErrorCode)
		}
		return fmt.Errorf("reply reports failure: ActionStatus %q, ErrorCode %s, ErrorInfo %q", r.ActionStatus, code, r.ErrorInfo)
	}
	return nil
}

// Invalid implements callbacks.Sender: the request, unsigned.
func (t Sender) Invalid(ctx context.Context, base, path string, cb callbacks.Callback) (*http.Request, error) {
	t.Token = ""
	return t.Request(ctx, base, path, cb)
}

// RefusesReplays implements callbacks.Sender: a Sign is valid for the
// signature window, so the server refuses an exact replay of an accepted
// request.
func (Sender) RefusesReplays() bool { return true }
