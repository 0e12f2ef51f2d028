package groupstate

import (
	"testing"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// Event keys are stored in every status write (dedupe window, journal), so
// they are compact: 16 characters for 96 bits.
func TestCanonicalKey_compact(t *testing.T) {
	ev := GroupEvent{Provider: imv1.ProviderTencent, AppID: "1400000000", GroupID: "@TGS#1", Kind: imv1.EventMembersJoined,
		Members: []Member{{UserID: "alice"}}, EventTime: time.Unix(1700000000, 0)}
	key := ev.CanonicalKey("")
	if len(key) != 16 {
		t.Errorf("key %q has %d characters, want 16", key, len(key))
	}
	ev.Members[0].UserID = "bob"
	if ev.CanonicalKey("") == key {
		t.Error("different events share a key")
	}
}
