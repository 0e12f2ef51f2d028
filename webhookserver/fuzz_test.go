package webhookserver

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// The fuzz targets check the decoder contract on arbitrary input: no
// panic, only ErrUnknownCommand or a *DecodeError as errors, and every
// accepted event within the bounds the ChatGroup API can store. The seed
// corpus is committed under testdata/fuzz; run longer with `make fuzz`.

func FuzzTencentDecode(f *testing.F) {
	for cmd, body := range map[string]string{
		TencentCreateGroup: tencentCreateBody, TencentNewMemberJoin: tencentJoinBody, TencentMemberExit: tencentExitBody,
		TencentGroupDestroyed: tencentDestroyBody, TencentGroupInfoChanged: tencentInfoBody,
		TencentChangeGroupOwner: tencentOwnerBody, TencentMemberFieldChanged: tencentMemberFieldBody,
	} {
		f.Add(cmd, []byte(body))
	}
	f.Fuzz(func(t *testing.T, command string, body []byte) {
		checkDecoded(t, TencentCodec{}, command, body)
	})
}

func FuzzOpenIMDecode(f *testing.F) {
	for cmd, body := range map[string]string{
		OpenIMCreateGroup: openIMCreateBody, OpenIMJoinGroup: openIMJoinBody, OpenIMQuitGroup: openIMQuitBody,
		OpenIMKickGroup: openIMKickBody, OpenIMDismissGroup: openIMDismissBody, OpenIMSetGroupInfo: openIMSetInfoBody,
		OpenIMTransferGroupOwner: openIMTransferBody, OpenIMSetGroupMemberInfo: openIMMemberBody,
	} {
		f.Add(cmd, []byte(body))
	}
	f.Fuzz(func(t *testing.T, command string, body []byte) {
		checkDecoded(t, OpenIMCodec{}, command, body)
	})
}

func checkDecoded(t *testing.T, codec Codec, command string, body []byte) {
	ev, err := codec.Decode(command, body)
	if err != nil {
		var decodeErr *DecodeError
		if !errors.Is(err, ErrUnknownCommand) && !errors.As(err, &decodeErr) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		if !json.Valid(codec.Reply(Outcome{Code: 400, Message: err.Error()})) {
			t.Fatal("error reply is not JSON")
		}
		return
	}
	if ev.Provider != codec.Provider() || ev.Kind == "" {
		t.Fatalf("event without provider or kind: %+v", ev)
	}
	if ev.GroupID == "" || len(ev.GroupID) > maxIDLength {
		t.Fatalf("group ID %q out of bounds", ev.GroupID)
	}
	seen := map[string]bool{}
	for _, m := range ev.Members {
		if m.UserID == "" || len(m.UserID) > maxIDLength || !utf8.ValidString(m.UserID) || seen[m.UserID] {
			t.Fatalf("bad or repeated member %q", m.UserID)
		}
		seen[m.UserID] = true
	}
	if len(ev.Name) > maxTextLength || len(ev.Message) > maxTextLength || len(ev.Type) > maxTypeLength {
		t.Fatal("free text out of bounds")
	}
	if ev.Kind == imv1.EventMembersLeft && ev.Reason == "" {
		t.Fatal("leave without a reason")
	}
	if y := ev.EventTime.Year(); !ev.EventTime.IsZero() && (y < 1970 || y > 9999) {
		t.Fatalf("event time %v cannot be stored", ev.EventTime)
	}
}
