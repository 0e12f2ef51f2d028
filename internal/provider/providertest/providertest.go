// Package providertest finds the callback Sender of a provider: the
// test-side counterpart of the provider registry, for the tools and tests
// that drive any provider (hack/send-callback, the load generator, the
// test support and the e2e test).
package providertest

import (
	"fmt"
	"strings"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim/openimtest"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
)

// kit is one provider's test package.
type kit struct {
	// newSender returns a Sender for a receiver's appID and token.
	newSender func(appID, token string) callbacks.Sender
	// sampleAppID is the appID tests give the provider's receivers. Every
	// receiver needs one; for OpenIM it names the server.
	sampleAppID string
}

// kits are the providers' test packages, one line each.
var kits = []kit{
	{tencenttest.New, tencenttest.SampleAppID},
	{openimtest.New, openimtest.SampleAppID},
}

// find returns the kit of a provider, by name in any case.
func find(name string) (kit, bool) {
	for _, k := range kits {
		if strings.EqualFold(string(k.newSender("", "").Name()), name) {
			return k, true
		}
	}
	return kit{}, false
}

// New returns the Sender of the provider named by name (in any case), for
// a receiver's appID and signing token; providers that do not use them
// ignore them.
func New(name, appID, token string) (callbacks.Sender, error) {
	k, ok := find(name)
	if !ok {
		return nil, fmt.Errorf("unknown provider %q: use %s", name, names())
	}
	return k.newSender(appID, token), nil
}

// Senders returns a Sender of each provider that has a test package, with
// its sample appID and no token.
func Senders() []callbacks.Sender {
	out := make([]callbacks.Sender, len(kits))
	for i, k := range kits {
		out[i] = k.newSender(k.sampleAppID, "")
	}
	return out
}

// SampleAppID is the appID tests give a provider's receivers.
func SampleAppID(p imv1.Provider) string {
	k, _ := find(string(p))
	return k.sampleAppID
}

// names lists the providers for a message: "A, B or C".
func names() string {
	all := make([]string, len(kits))
	for i, k := range kits {
		all[i] = string(k.newSender("", "").Name())
	}
	if len(all) == 1 {
		return all[0]
	}
	return strings.Join(all[:len(all)-1], ", ") + " or " + all[len(all)-1]
}
