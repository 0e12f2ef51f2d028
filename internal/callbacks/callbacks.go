// Package callbacks is the provider-neutral description of a group change
// that a platform would report in callbacks (Action, Params), the rendered
// callback (Callback), and Sender, the interface each provider's test
// package (internal/provider/<provider>/<provider>test) implements to
// render and send callbacks exactly as the platform does. The callback
// sender (hack/send-callback), the load generator and the tests speak this
// vocabulary; internal/provider/providertest finds the Sender of a
// provider.
//
// Building is split from sending: Build renders a payload once, cheaply,
// and Request wraps it in an HTTP request at send time (Tencent signs with
// the current second), so one Callback can be delivered many times.
package callbacks

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// Action is a provider-neutral group change. Each provider maps it to its
// own command (Sender.Command).
type Action string

// The supported actions.
const (
	Create      Action = "create"
	Join        Action = "join"
	Quit        Action = "quit"
	Kick        Action = "kick"
	Disband     Action = "disband"
	Info        Action = "info"
	Owner       Action = "owner"
	MemberField Action = "member-field"
)

// Actions lists every supported action, in a stable order.
var Actions = []Action{Create, Join, Quit, Kick, Disband, Info, Owner, MemberField}

// ParseAction parses an action name, case-insensitively.
func ParseAction(s string) (Action, error) {
	a := Action(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Actions, a) {
		return a, nil
	}
	return "", fmt.Errorf("unknown action %q: use one of %s", s, ActionList())
}

// ActionList names every action, for messages.
func ActionList() string {
	names := make([]string, len(Actions))
	for i, a := range Actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// DefaultOperator is the operator of administrative changes (kick, profile
// and role changes) when Params.Operator is empty: the app admin account,
// as in Tencent's samples.
const DefaultOperator = "admin"

// Params describe one group change. Only GroupID is always required; each
// action reads the fields its payload has and fills sensible defaults.
type Params struct {
	// GroupID is the platform's group ID, for example @TGS#2J4SZEAEL.
	GroupID string
	// Users are the users the change is about: the initial members
	// (create), the joining, quitting or kicked members, the roster at the
	// disband, or the member whose profile changed (member-field, first
	// user only).
	Users []string
	// Operator is the user who made the change. Defaults: the owner for
	// create, the joining user for a single join (an application, otherwise
	// DefaultOperator and an invitation), the leaving user for quit, the
	// previous owner for an ownership transfer, otherwise DefaultOperator.
	Operator string
	// Owner is the group owner (create, disband) or the new owner (owner).
	// For create it defaults to Operator, then to the first user.
	Owner string
	// PreviousOwner is the owner before an ownership transfer.
	PreviousOwner string
	// Reason is why members were kicked. Only OpenIM sends it.
	Reason string
	// GroupName is the group's name (create, disband) or its new name
	// (info). It defaults to GroupID for create.
	GroupName string
	// Notification is the group's new notice (info).
	Notification string
	// GroupType is Tencent's group type. Default: Public.
	GroupType string
	// Role is the member's new role for member-field: Admin or Member.
	// Default: Admin, unless only NameCard is set.
	Role string
	// NameCard is the member's new group nickname (member-field).
	NameCard string
	// EventTime is when the change happened (Tencent sends it with every
	// callback, OpenIM only with a create). Default: now.
	EventTime time.Time
	// OperationID is OpenIM's operation ID header (and the join body's
	// field). Default: a new unique ID per callback.
	OperationID string
}

// Callback is one rendered callback, ready to be sent any number of times.
type Callback struct {
	// Command is the provider's command, for example
	// Group.CallbackAfterNewMemberJoin or callbackAfterJoinGroupCommand.
	Command string
	// Body is the JSON request body.
	Body []byte
	// OperationID is sent in OpenIM's operation ID header.
	OperationID string
}

// Sender builds and sends one platform's callbacks.
type Sender interface {
	// Name is the provider as ChatReceivers spell it.
	Name() imv1.Provider
	// Command is the platform's command for an action.
	Command(a Action) (string, error)
	// Build renders the callbacks the platform sends for a change. It is
	// usually one; OpenIM sends one per user for joins and quits.
	Build(a Action, p Params) ([]Callback, error)
	// Request wraps a callback in a POST to base+path, the receiver's
	// status.webhookPath on the callback server at base.
	Request(ctx context.Context, base, path string, cb Callback) (*http.Request, error)
	// Invalid wraps a callback in a request the server must refuse:
	// unsigned when the platform signs, otherwise with a payload of the
	// wrong type.
	Invalid(ctx context.Context, base, path string, cb Callback) (*http.Request, error)
	// RefusesReplays reports whether the server refuses an exact re-delivery
	// of an accepted request (same signature and content) as a replay.
	RefusesReplays() bool
	// CheckReply returns an error unless a reply body reports success.
	CheckReply(body []byte) error
}

// URL joins the server's base URL and the receiver's path.
func URL(base, path string) (string, error) {
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return "", fmt.Errorf("callback server URL %q must start with http:// or https://", base)
	}
	if !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("webhook path %q must start with /", path)
	}
	return strings.TrimRight(base, "/") + path, nil
}

// EventTimeOrNow is p.EventTime, or now when unset.
func (p *Params) EventTimeOrNow() time.Time {
	if p.EventTime.IsZero() {
		return time.Now()
	}
	return p.EventTime
}

// OperatorOr is p.Operator, or fallback when unset.
func (p *Params) OperatorOr(fallback string) string {
	if p.Operator != "" {
		return p.Operator
	}
	return fallback
}

// FirstUser returns the first user, or an error naming the action.
func (p *Params) FirstUser(a Action) (string, error) {
	if len(p.Users) == 0 || p.Users[0] == "" {
		return "", fmt.Errorf("%s needs a user", a)
	}
	return p.Users[0], nil
}

// Creator returns the owner and operator of a create: each defaults to the
// other, then to the first user.
func (p *Params) Creator() (owner, operator string, err error) {
	owner, operator = p.Owner, p.Operator
	if owner == "" {
		owner = operator
	}
	if owner == "" && len(p.Users) > 0 {
		owner = p.Users[0]
	}
	if owner == "" {
		return "", "", fmt.Errorf("%s needs an owner, an operator or a user", Create)
	}
	if operator == "" {
		operator = owner
	}
	return owner, operator, nil
}

// MemberFieldRole is the member-field role: Admin or Member, defaulting to
// Admin unless only the name card changed.
func (p *Params) MemberFieldRole() (string, error) {
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
