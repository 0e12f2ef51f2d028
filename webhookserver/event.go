package webhookserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// GroupEvent is the provider-neutral form of one group callback. Codecs
// produce it; everything downstream knows only this type.
type GroupEvent struct {
	// Provider and AppID identify the platform application.
	Provider imv1.Provider
	AppID    string
	// GroupID is the platform's group ID.
	GroupID string
	// Command is the provider's callback command, for logs and metrics.
	Command string
	// Kind is what happened.
	Kind imv1.EventKind
	// Members are the users the event is about: the initial members of a
	// Created event, the joiners, the leavers, the final roster of a
	// Disbanded event (when the platform sends it), or the member whose
	// role changed in an InfoChanged event.
	Members []Member
	// Reason is Quit or Kicked for MembersLeft.
	Reason imv1.LeaveReason
	// Message is free text from the platform, such as a kick reason.
	Message string
	// Operator is the user who caused the event, when known.
	Operator string
	// Owner is the group owner (Created, Disbanded) or the new owner
	// (OwnerChanged).
	Owner string
	// Name is the group name, when the event carries one.
	Name string
	// Type is the normalised group type, when the event carries one.
	Type string
	// EventTime is the platform's event time; zero when the platform sent
	// none, in which case the server stamps the arrival time.
	EventTime time.Time
	// Key is the content-derived deduplication key.
	Key string
}

// Member is a user named by an event, with a role when the event says.
type Member struct {
	UserID string
	Role   imv1.MemberRole
}

// ErrUnknownCommand is returned by a codec for a command it does not handle.
// The server answers 200 with an "ignored" result.
var ErrUnknownCommand = errors.New("unknown callback command")

// DecodeError is returned by a codec for a payload it cannot accept. The
// server answers 400 with the provider's error body.
type DecodeError struct {
	Command string
	Err     error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decoding %s payload: %v", e.Command, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Codec turns one provider's callback payloads into GroupEvents.
type Codec interface {
	// Provider is the provider this codec serves.
	Provider() imv1.Provider
	// Decode parses the body of a callback for command. It returns
	// ErrUnknownCommand for commands that carry no group event, and a
	// *DecodeError for malformed JSON, wrong field types or missing
	// required fields. It does not set AppID, EventTime defaults or Key.
	Decode(command string, body []byte) (GroupEvent, error)
	// Reply renders the provider's response body for an outcome, exactly in
	// the shape the provider documents.
	Reply(o Outcome) []byte
}

// Outcome is the result the server reports to the platform.
type Outcome struct {
	// OK is true when the callback was accepted (applied, a duplicate,
	// stale, or ignored).
	OK bool
	// Code is a provider error code; 0 on success.
	Code int
	// Message is a short, human-readable result ("applied", "duplicate",
	// "ignored: unknown command", or the error).
	Message string
	// Detail is longer error detail (OpenIM errDlt); Tencent has no field
	// for it.
	Detail string
}

// Bounds from the ChatGroup API: values past them could never be stored.
const (
	maxIDLength   = 256
	maxTypeLength = 64
	maxTextLength = 1024
)

// validate checks an event against the bounds of the ChatGroup API, so a
// bad payload is rejected with 400 instead of failing the status write of
// every event batched with it. Free text is truncated rather than rejected.
func (ev *GroupEvent) validate() error {
	if err := checkID("group ID", ev.GroupID); err != nil {
		return err
	}
	for _, id := range []struct{ what, v string }{{"operator", ev.Operator}, {"owner", ev.Owner}} {
		if id.v != "" {
			if err := checkID(id.what, id.v); err != nil {
				return err
			}
		}
	}
	for _, m := range ev.Members {
		if err := checkID("member user ID", m.UserID); err != nil {
			return err
		}
	}
	if len(ev.Type) > maxTypeLength {
		return fmt.Errorf("group type is longer than %d bytes", maxTypeLength)
	}
	ev.Name = truncateUTF8(ev.Name, maxTextLength)
	ev.Message = truncateUTF8(ev.Message, maxTextLength)
	return nil
}

func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s is empty", what)
	case len(id) > maxIDLength:
		return fmt.Errorf("%s is longer than %d bytes", what, maxIDLength)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// roleRank orders roles so duplicates keep the strongest.
var roleRank = map[imv1.MemberRole]int{imv1.RoleOwner: 3, imv1.RoleAdmin: 2, imv1.RoleMember: 1}

// dedupeMembers removes repeated users, keeping the first position and the
// strongest role seen.
func dedupeMembers(ms []Member) []Member {
	index := make(map[string]int, len(ms))
	out := ms[:0]
	for _, m := range ms {
		if i, ok := index[m.UserID]; ok {
			if roleRank[m.Role] > roleRank[out[i].Role] {
				out[i].Role = m.Role
			}
			continue
		}
		index[m.UserID] = len(out)
		out = append(out, m)
	}
	return out
}

// withRole gives user the role, adding the user when absent.
func withRole(ms []Member, user string, role imv1.MemberRole) []Member {
	for i := range ms {
		if ms[i].UserID == user {
			ms[i].Role = role
			return ms
		}
	}
	return append(ms, Member{UserID: user, Role: role})
}

// decodeJSON unmarshals a callback body, rewording type errors so the
// sender learns which field was wrong.
func decodeJSON(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Errorf("field %s: got a JSON %s, want %s", typeErr.Field, typeErr.Value, jsonKind(typeErr.Type))
	case errors.As(err, &typeErr):
		return fmt.Errorf("body is a JSON %s, want an object", typeErr.Value)
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("malformed JSON: %w", err)
	}
	return err
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return "number"
}
