package provider

// The vocabulary a provider package and the callback server share for one
// callback: the receiver's credentials and the outcome of checking them,
// decode errors, the outcome reported back to the platform, and a JSON
// decoding helper.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
)

// Credentials are what a receiver's callbacks are checked against.
type Credentials struct {
	// AppID is the receiver's spec.appID.
	AppID string
	// Tokens are the receiver's tokens, current first.
	Tokens []string
	// Username and Password are the optional basic-auth credentials.
	Username, Password string
	// HeaderToken is the optional value a request header must carry.
	HeaderToken string
}

// Auth is an authenticated request's identity.
type Auth struct {
	// Token is the index in Credentials.Tokens of the token the request was
	// signed with, or -1 when the provider signs nothing (the token of the
	// request's path then identifies it).
	Token int
	// ReplayID identifies a signed request, so that an exact replay can be
	// refused; "" when the provider's requests carry nothing that tells a
	// replay from a retry, and no replay check is made.
	ReplayID string
}

// AuthError is a request refused by a provider's credential check, with
// the HTTP status and the metric result to answer with.
type AuthError struct {
	Status int
	Result string
	Err    error
}

func (e *AuthError) Error() string { return e.Err.Error() }

func (e *AuthError) Unwrap() error { return e.Err }

// Forbidden refuses a request from the wrong application (403).
func Forbidden(err error) error {
	return &AuthError{Status: http.StatusForbidden, Result: "forbidden", Err: err}
}

// Unauthorized refuses a request without valid credentials (401).
func Unauthorized(err error) error {
	return &AuthError{Status: http.StatusUnauthorized, Result: "unauthorized", Err: err}
}

// ErrUnknownCommand is returned by a provider for a command it does not
// handle. The server answers 200 with an "ignored" result.
var ErrUnknownCommand = errors.New("unknown callback command")

// DecodeError is returned by a provider for a payload it cannot accept.
// The server answers 400 with the provider's error body.
type DecodeError struct {
	Command string
	Err     error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decoding %s payload: %v", e.Command, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

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
	// Detail is longer error detail, for providers whose reply has a field
	// for it (OpenIM's errDlt). The server sets none today.
	Detail string
}

// DecodeJSON unmarshals a callback body, rewording type errors so the
// sender learns which field was wrong.
func DecodeJSON(body []byte, v any) error {
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
