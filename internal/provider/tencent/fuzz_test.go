package tencent

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// FuzzDecode checks the decoder contract on arbitrary input: no panic,
// only ErrUnknownCommand or a *DecodeError as errors, and every accepted
// event within the bounds the ChatGroup API can store. The seed corpus is
// committed under testdata/fuzz; run longer with `make fuzz`.
func FuzzDecode(f *testing.F) {
	for cmd, name := range samples {
		f.Add(cmd, sample(f, name))
	}
	f.Fuzz(func(t *testing.T, command string, body []byte) {
		ev, err := Provider{}.Decode(command, body)
		if err != nil {
			var decodeErr *provider.DecodeError
			if !errors.Is(err, provider.ErrUnknownCommand) && !errors.As(err, &decodeErr) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if !json.Valid(Provider{}.Reply(provider.Outcome{Code: 400, Message: err.Error()})) {
				t.Fatal("error reply is not JSON")
			}
			return
		}
		checkDecoded(t, ev)
	})
}

func checkDecoded(t *testing.T, ev groupstate.GroupEvent) {
	if ev.Provider != Name || ev.Kind == "" {
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
