// Package registry lists the providers the operator serves and finds the
// one a request or a receiver needs.
package registry

import (
	"net/http"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/provider"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
)

// providers are the providers the operator serves. Adding one is a line
// here, its package, and its value in the Provider enum of api/v1alpha1.
var providers = []provider.Provider{
	tencent.Provider{},
	openim.Provider{},
}

// fallback answers requests that reach no receiver and that no provider
// claims: in OpenIM's shape, which has no marks of its own.
var fallback provider.Provider = openim.Provider{}

// Get returns the provider of a name.
func Get(name imv1.Provider) (provider.Provider, bool) {
	for _, p := range providers {
		if p.Name() == name {
			return p, true
		}
	}
	return nil, false
}

// Guess returns the provider a request that reached no receiver most
// likely comes from, to answer it in a shape the sender can parse.
func Guess(r *http.Request) provider.Provider {
	for _, p := range providers {
		if p.Claims(r) {
			return p
		}
	}
	return fallback
}

// CommandLabel is a command as a metric label: its canonical spelling when
// a provider decodes it, and "other" for anything else, so labels stay
// bounded.
func CommandLabel(command string) string {
	for _, p := range providers {
		if canonical, ok := p.KnownCommand(command); ok {
			return canonical
		}
	}
	return "other"
}
