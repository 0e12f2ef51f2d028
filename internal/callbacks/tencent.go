package callbacks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/webhookserver"
)

var tencentCommands = map[Action]string{
	Create:      webhookserver.TencentCreateGroup,
	Join:        webhookserver.TencentNewMemberJoin,
	Quit:        webhookserver.TencentMemberExit,
	Kick:        webhookserver.TencentMemberExit,
	Disband:     webhookserver.TencentGroupDestroyed,
	Info:        webhookserver.TencentGroupInfoChanged,
	Owner:       webhookserver.TencentChangeGroupOwner,
	MemberField: webhookserver.TencentMemberFieldChanged,
}

// Tencent builds Tencent Cloud Chat callbacks.
type Tencent struct {
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

var _ Provider = Tencent{}

// Name implements Provider.
func (Tencent) Name() imv1.Provider { return imv1.ProviderTencent }

// Command implements Provider. Quit and Kick are both
// Group.CallbackAfterMemberExit, told apart by ExitType.
func (Tencent) Command(a Action) (string, error) {
	cmd, ok := tencentCommands[a]
	if !ok {
		return "", fmt.Errorf("unknown action %q: use one of %s", a, actionList())
	}
	return cmd, nil
}

// tencentMember is an entry of a member list.
type tencentMember struct {
	MemberAccount string `json:"Member_Account"`
}

func tencentMembers(users []string) []tencentMember {
	ms := make([]tencentMember, len(users))
	for i, u := range users {
		ms[i] = tencentMember{MemberAccount: u}
	}
	return ms
}

// tencentTime is EventTime in milliseconds, quoted unless numeric.
type tencentTime struct {
	ms      int64
	numeric bool
}

func (t tencentTime) MarshalJSON() ([]byte, error) {
	s := strconv.FormatInt(t.ms, 10)
	if t.numeric {
		return []byte(s), nil
	}
	return []byte(`"` + s + `"`), nil
}

// The request bodies, one struct per command with the documented fields in
// the documented order.
type (
	tencentCreateBody struct {
		CallbackCommand string          `json:"CallbackCommand"`
		GroupID         string          `json:"GroupId"`
		Operator        string          `json:"Operator_Account"`
		Owner           string          `json:"Owner_Account"`
		Type            string          `json:"Type"`
		Name            string          `json:"Name"`
		MemberList      []tencentMember `json:"MemberList"`
		EventTime       tencentTime     `json:"EventTime"`
	}
	tencentJoinBody struct {
		CallbackCommand string          `json:"CallbackCommand"`
		GroupID         string          `json:"GroupId"`
		Type            string          `json:"Type"`
		JoinType        string          `json:"JoinType"`
		Operator        string          `json:"Operator_Account"`
		NewMemberList   []tencentMember `json:"NewMemberList"`
		EventTime       tencentTime     `json:"EventTime"`
	}
	tencentExitBody struct {
		CallbackCommand string          `json:"CallbackCommand"`
		GroupID         string          `json:"GroupId"`
		Type            string          `json:"Type"`
		ExitType        string          `json:"ExitType"`
		Operator        string          `json:"Operator_Account"`
		ExitMemberList  []tencentMember `json:"ExitMemberList"`
		EventTime       tencentTime     `json:"EventTime"`
	}
	tencentDestroyedBody struct {
		CallbackCommand string          `json:"CallbackCommand"`
		GroupID         string          `json:"GroupId"`
		Type            string          `json:"Type"`
		Owner           string          `json:"Owner_Account"`
		Name            string          `json:"Name"`
		MemberList      []tencentMember `json:"MemberList"`
		EventTime       tencentTime     `json:"EventTime"`
	}
	// Only the changed profile fields are present.
	tencentInfoBody struct {
		CallbackCommand string      `json:"CallbackCommand"`
		GroupID         string      `json:"GroupId"`
		Type            string      `json:"Type"`
		Operator        string      `json:"Operator_Account"`
		Name            string      `json:"Name,omitempty"`
		Notification    string      `json:"Notification,omitempty"`
		EventTime       tencentTime `json:"EventTime"`
	}
	tencentOwnerBody struct {
		CallbackCommand string      `json:"CallbackCommand"`
		GroupID         string      `json:"GroupId"`
		Type            string      `json:"Type"`
		Operator        string      `json:"Operator_Account"`
		OldOwner        string      `json:"OldOwner_Account"`
		NewOwner        string      `json:"NewOwner_Account"`
		EventTime       tencentTime `json:"EventTime"`
	}
	// Role and NameCard are present only when they changed.
	tencentMemberFieldBody struct {
		CallbackCommand string      `json:"CallbackCommand"`
		GroupID         string      `json:"GroupId"`
		Type            string      `json:"Type"`
		Operator        string      `json:"Operator_Account"`
		Member          string      `json:"Member_Account"`
		Role            string      `json:"Role,omitempty"`
		NameCard        string      `json:"NameCard,omitempty"`
		EventTime       tencentTime `json:"EventTime"`
	}
)

// Build implements Provider. Tencent sends one callback per change, with
// every affected member in it.
func (t Tencent) Build(a Action, p Params) ([]Callback, error) {
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
	return []Callback{{Command: cmd, Body: b}}, nil
}

func (t Tencent) body(a Action, cmd string, p *Params) (any, error) {
	groupType := p.GroupType
	if groupType == "" {
		groupType = "Public"
	}
	at := tencentTime{ms: p.eventTime().UnixMilli(), numeric: t.NumericEventTime}
	switch a {
	case Create:
		owner, operator, err := p.creator()
		if err != nil {
			return nil, err
		}
		name := p.GroupName
		if name == "" {
			name = p.GroupID
		}
		return tencentCreateBody{cmd, p.GroupID, operator, owner, groupType, name, tencentMembers(p.Users), at}, nil
	case Join:
		if len(p.Users) == 0 {
			return nil, fmt.Errorf("%s needs at least one user", a)
		}
		// A single user who asks to join is an application; anything
		// else (an admin adding users) is an invitation.
		joinType, operator := "Invited", p.operatorOr(DefaultOperator)
		if len(p.Users) == 1 && (p.Operator == "" || p.Operator == p.Users[0]) {
			joinType, operator = "Apply", p.Users[0]
		}
		return tencentJoinBody{cmd, p.GroupID, groupType, joinType, operator, tencentMembers(p.Users), at}, nil
	case Quit, Kick:
		first, err := p.firstUser(a)
		if err != nil {
			return nil, err
		}
		exitType, operator := "Quit", p.operatorOr(first)
		if a == Kick {
			exitType, operator = "Kicked", p.operatorOr(DefaultOperator)
		}
		return tencentExitBody{cmd, p.GroupID, groupType, exitType, operator, tencentMembers(p.Users), at}, nil
	case Disband:
		return tencentDestroyedBody{cmd, p.GroupID, groupType, p.Owner, p.GroupName, tencentMembers(p.Users), at}, nil
	case Info:
		if p.GroupName == "" && p.Notification == "" {
			return nil, fmt.Errorf("%s needs a new group name or notification", a)
		}
		return tencentInfoBody{cmd, p.GroupID, groupType, p.operatorOr(DefaultOperator), p.GroupName, p.Notification, at}, nil
	case Owner:
		if p.Owner == "" {
			return nil, fmt.Errorf("%s needs the new owner", a)
		}
		operator := p.operatorOr(p.PreviousOwner)
		if operator == "" {
			operator = DefaultOperator
		}
		return tencentOwnerBody{cmd, p.GroupID, groupType, operator, p.PreviousOwner, p.Owner, at}, nil
	default: // MemberField; Command rejected unknown actions
		member, err := p.firstUser(a)
		if err != nil {
			return nil, err
		}
		role, err := memberFieldRole(p)
		if err != nil {
			return nil, err
		}
		return tencentMemberFieldBody{cmd, p.GroupID, groupType, p.operatorOr(DefaultOperator), member, role, p.NameCard, at}, nil
	}
}

// memberFieldRole is the member-field role: Admin or Member, defaulting to
// Admin unless only the name card changed.
func memberFieldRole(p *Params) (string, error) {
	switch {
	case p.Role == "" && p.NameCard != "":
		return "", nil
	case p.Role == "":
		return "Admin", nil
	case strings.EqualFold(p.Role, "Admin"):
		return "Admin", nil
	case strings.EqualFold(p.Role, "Member"):
		return "Member", nil
	}
	return "", fmt.Errorf("role %q is not Admin or Member", p.Role)
}

// Request implements Provider: a POST to
// <base><path>?SdkAppid=..&CallbackCommand=..&contenttype=json&ClientIP=..&OptPlatform=..
// followed by &Sign=..&RequestTime=.. when a token is set, signed now.
func (t Tencent) Request(ctx context.Context, base, path string, cb Callback) (*http.Request, error) {
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
func (t Tencent) URL(base, path, command string, requestTime time.Time) (string, error) {
	u, err := callbackURL(base, path)
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
		param("Sign", Sign(t.Token, rt))
		param("RequestTime", rt)
	}
	return u + "?" + q.String(), nil
}

// Sign is Tencent's callback signature: the lower-case hex SHA-256 of the
// token followed directly by RequestTime (Unix seconds). It is not an HMAC.
func Sign(token, requestTime string) string {
	sum := sha256.Sum256([]byte(token + requestTime))
	return hex.EncodeToString(sum[:])
}

// tencentReply is the documented response of every "after" callback.
type tencentReply struct {
	ActionStatus string `json:"ActionStatus"`
	ErrorCode    *int   `json:"ErrorCode"`
	ErrorInfo    string `json:"ErrorInfo"`
}

// CheckReply implements Provider: success is ActionStatus OK with
// ErrorCode 0.
func (Tencent) CheckReply(body []byte) error {
	var r tencentReply
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
