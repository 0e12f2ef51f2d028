// Package providercheck holds the checks every provider's decoder must pass,
// for the providers' own tests and fuzz targets. It imports no provider, so
// their internal tests can use it.
package providercheck

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// Decode checks the decoder contract on one input: only ErrUnknownCommand
// or a *DecodeError as errors, a JSON error reply, and every accepted event
// within the bounds the ChatGroup API can store.
func Decode(t testing.TB, p provider.Provider, command string, body []byte) {
	t.Helper()
	ev, err := p.Decode(command, body)
	if err != nil {
		var decodeErr *provider.DecodeError
		if !errors.Is(err, provider.ErrUnknownCommand) && !errors.As(err, &decodeErr) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		if !json.Valid(p.Reply(provider.Outcome{Code: 400, Message: err.Error()})) {
			t.Fatal("error reply is not JSON")
		}
		return
	}
	checkDecoded(t, p.Name(), ev)
}

func checkDecoded(t testing.TB, name imv1.Provider, ev groupstate.GroupEvent) {
	t.Helper()
	if ev.Provider != name || ev.Kind == "" {
		t.Fatalf("event without provider or kind: %+v", ev)
	}
	if ev.GroupID == "" || len(ev.GroupID) > groupstate.MaxIDLength {
		t.Fatalf("group ID %q out of bounds", ev.GroupID)
	}
	seen := map[string]bool{}
	for _, m := range ev.Members {
		if m.UserID == "" || len(m.UserID) > groupstate.MaxIDLength || !utf8.ValidString(m.UserID) || seen[m.UserID] {
			t.Fatalf("bad or repeated member %q", m.UserID)
		}
		seen[m.UserID] = true
	}
	if len(ev.Name) > groupstate.MaxTextLength || len(ev.Message) > groupstate.MaxTextLength || len(ev.Type) > groupstate.MaxTypeLength {
		t.Fatal("free text out of bounds")
	}
	if ev.Kind == imv1.EventMembersLeft && ev.Reason == "" {
		t.Fatal("leave without a reason")
	}
	if y := ev.EventTime.Year(); !ev.EventTime.IsZero() && (y < 1970 || y > 9999) {
		t.Fatalf("event time %v cannot be stored", ev.EventTime)
	}
}
