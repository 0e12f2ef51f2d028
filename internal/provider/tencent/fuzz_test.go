package tencent

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider/providercheck"
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
		providercheck.Decode(t, Provider{}, command, body)
	})
}

// FuzzDecodeReduce runs decoded events through the reducer (security
// audit I1): whatever a body decodes to, reducing it must not panic, must
// keep memberCount consistent with the list, and a redelivery of the same
// event must be a duplicate that changes nothing.
func FuzzDecodeReduce(f *testing.F) {
	for cmd, name := range samples {
		f.Add(cmd, sample(f, name))
	}
	f.Fuzz(func(t *testing.T, command string, body []byte) {
		ev, err := Provider{}.Decode(command, body)
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
	})
}
