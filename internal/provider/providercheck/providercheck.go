// Package providercheck holds the checks every provider's decoder must pass,
// for the providers' own tests and fuzz targets. It imports no provider, so
// their internal tests can use it.
package providercheck

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/equality"

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

// Reduce runs a decoded event through the reducer (security audit I1):
// whatever a body decodes to, reducing it must not panic, must keep
// memberCount at least the listed members, and a redelivery of the same
// event must be a duplicate that changes nothing.
func Reduce(t testing.TB, p provider.Provider, command string, body []byte) {
	t.Helper()
	ev, err := p.Decode(command, body)
	if err != nil || ev.Validate() != nil {
		return
	}
	if ev.EventTime.IsZero() {
		ev.EventTime, ev.Untimed = time.Unix(1700000000, 0), true
	}
	ev.EventTime = ev.EventTime.UTC().Truncate(time.Microsecond)
	ev.Key = ev.CanonicalKey("")
	lim := groupstate.Limits{MaxMembers: 100, MaxDeparted: 100, JournalSize: 8, DedupeWindow: 16}
	st := &imv1.ChatGroupStatus{}
	groupstate.Reduce(st, []groupstate.GroupEvent{ev}, lim)
	if int(st.MemberCount) < len(st.Members) {
		t.Fatalf("memberCount %d below the %d listed members", st.MemberCount, len(st.Members))
	}
	before := st.DeepCopy()
	if r := groupstate.Reduce(st, []groupstate.GroupEvent{ev}, lim); r[0] != groupstate.Duplicate {
		t.Fatalf("a redelivery is %q, not a duplicate", r[0])
	}
	if !equality.Semantic.DeepEqual(before.Members, st.Members) || before.LastSeq != st.LastSeq {
		t.Fatal("a duplicate changed the status")
	}
}
