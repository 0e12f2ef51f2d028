// Package tencent is everything the operator knows about Tencent Cloud Chat
// (IM) group callbacks: the commands and how each decodes into a
// GroupEvent, the signature check, the replay identity and the reply body.
// tencenttest builds the same callbacks for tests and tools; testdata holds
// the documented payloads verbatim.
//
// A Tencent callback is a POST to the receiver's path with the command in
// the CallbackCommand query parameter (and again in the body), signed with
// Sign = sha256(token + RequestTime).
package tencent

import (
	"net/http"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// Name is the provider as ChatReceivers and ChatGroups spell it.
const Name = imv1.ProviderTencent

// The query parameters of a callback this package reads.
const (
	commandParam     = "CallbackCommand"
	appIDParam       = "SdkAppid"
	signParam        = "Sign"
	requestTimeParam = "RequestTime"
)

// Provider serves Tencent Cloud Chat "after" group callbacks.
type Provider struct{}

// Name is Tencent.
func (Provider) Name() imv1.Provider { return Name }

// Claims reports whether a request that reached no receiver yet looks like
// Tencent's: it has the CallbackCommand query parameter.
func (Provider) Claims(r *http.Request) bool {
	return r.URL.Query().Get(commandParam) != ""
}

// Command is the CallbackCommand query parameter. Tencent posts to the
// receiver's path itself: a path with a suffix is not Tencent's.
func (Provider) Command(r *http.Request, suffix string) (string, bool) {
	return r.URL.Query().Get(commandParam), suffix == ""
}

// KnownCommand reports whether command is one this package decodes.
func (Provider) KnownCommand(command string) (string, bool) {
	_, ok := commands[command]
	return command, ok
}

// RequestID is empty: Tencent sends no per-request ID, so two identical
// callbacks are one event.
func (Provider) RequestID(*http.Request) string { return "" }
