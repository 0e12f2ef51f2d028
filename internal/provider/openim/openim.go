// Package openim is everything the operator knows about OpenIM server
// group callbacks ("webhooks"): the commands and how each decodes into a
// GroupEvent, the optional basic auth, the request identity and the reply
// body. openimtest builds the same callbacks for tests and tools; testdata
// holds the documented payloads verbatim.
//
// OpenIM posts to <url>/<command> and repeats the command in the body's
// callbackCommand. It signs nothing: the unguessable path is the secret.
package openim

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// Name is the provider as ChatReceivers and ChatGroups spell it.
const Name = imv1.ProviderOpenIM

// OperationIDHeader carries OpenIM's operation ID. It tells apart two
// identical callbacks (the same user quitting twice), so it is part of the
// dedupe key.
const OperationIDHeader = "operationID"

// Provider serves OpenIM "after" group callbacks.
type Provider struct{}

// Name is OpenIM.
func (Provider) Name() imv1.Provider { return Name }

// Claims is false: before its receiver is known, nothing in an OpenIM
// request tells it apart (the command suffix is just a path).
func (Provider) Claims(*http.Request) bool { return false }

// Command is the path suffix: OpenIM posts to <receiver path>/<command>,
// so a path without one is not OpenIM's.
func (Provider) Command(_ *http.Request, suffix string) (string, bool) {
	return suffix, suffix != ""
}

// KnownCommand returns the canonical spelling of a command this package
// decodes.
func (Provider) KnownCommand(command string) (string, bool) {
	command = canonical(command)
	_, ok := commands[command]
	return command, ok
}

// RequestID is the operationID header.
func (Provider) RequestID(r *http.Request) string { return r.Header.Get(OperationIDHeader) }

// CallbackTokenHeader carries the receiver's optional header token (the Secret's
// headerToken), for an OpenIM server or a proxy in front of the operator
// that can add a header: the path alone is then not enough (security audit
// M4).
const CallbackTokenHeader = "X-Chatgroup-Token"

// Authenticate checks basic auth when the receiver's Secret has a username
// or a password (the caller refuses a Secret with only one of them), and
// the CallbackTokenHeader when it has a headerToken. Every credential is always
// compared, so the timing does not tell which one was wrong. OpenIM signs
// nothing else, so there is no replay identity.
func (Provider) Authenticate(r *http.Request, creds provider.Credentials, _ time.Time, _ time.Duration) (provider.Auth, error) {
	basicOK := true
	if creds.Username != "" || creds.Password != "" {
		user, pass, ok := r.BasicAuth()
		userOK, passOK := constantTimeEqual(user, creds.Username), constantTimeEqual(pass, creds.Password)
		basicOK = ok && userOK && passOK
	}
	headerOK := true
	if creds.HeaderToken != "" {
		headerOK = constantTimeEqual(r.Header.Get(CallbackTokenHeader), creds.HeaderToken)
	}
	switch {
	case !basicOK:
		return provider.Auth{}, provider.Unauthorized(errors.New("basic auth required"))
	case !headerOK:
		return provider.Auth{}, provider.Unauthorized(fmt.Errorf("%s header required", CallbackTokenHeader))
	}
	return provider.Auth{Token: -1}, nil
}

// constantTimeEqual compares two secrets without leaking their contents
// through timing.
func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
