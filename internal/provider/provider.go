// Package provider is the seam between the callback server and the IM
// platforms: the Provider interface, which each provider package
// implements, and the types they share with the server. The registry
// subpackage lists the providers the operator serves.
//
// Everything that knows a platform's wire format lives in its package
// (internal/provider/tencent, internal/provider/openim): how a callback is
// routed, authenticated and decoded, and how it is answered. No other
// package spells a provider's field names.
package provider

import (
	"net/http"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
)

// Provider is one IM platform's side of the callback protocol. The server
// calls it in this order for each request: Command (route), Authenticate,
// RequestID and Decode, then Reply.
type Provider interface {
	// Name is the provider as ChatReceivers and ChatGroups spell it.
	Name() imv1.Provider
	// Claims reports whether a request that reached no receiver looks
	// like this provider's, so that even a 404 comes in a body the sender
	// can parse.
	Claims(r *http.Request) bool
	// Command returns the callback command of a request to one of this
	// provider's receivers, given the path suffix after the receiver's
	// path; ok is false when the path is not of this provider's shape.
	Command(r *http.Request, suffix string) (command string, ok bool)
	// KnownCommand returns the canonical spelling of a command this
	// provider decodes, for metric labels.
	KnownCommand(command string) (canonical string, ok bool)
	// Authenticate checks a request's credentials against the receiver's,
	// with now and the allowed clock skew for signed requests. It returns
	// a *AuthError when the request is refused.
	Authenticate(r *http.Request, creds Credentials, now time.Time, window time.Duration) (Auth, error)
	// RequestID is the platform's identity of a request that is part of
	// the event's dedupe key ("" when the platform sends none).
	RequestID(r *http.Request) string
	// Decode parses the body of a callback for command. It returns
	// ErrUnknownCommand for commands that carry no group event,
	// and a *DecodeError for a payload it cannot accept. It does
	// not set AppID, EventTime defaults or Key.
	Decode(command string, body []byte) (groupstate.GroupEvent, error)
	// Reply renders the provider's response body for an outcome, exactly
	// in the shape the provider documents.
	Reply(o Outcome) []byte
}
