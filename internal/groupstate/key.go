package groupstate

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"sort"
	"strconv"
)

// keyLen is how many bytes of the SHA-256 an event key keeps.
const keyLen = 12

// CanonicalKey derives the event's deduplication key from its decoded
// content, not from the raw body: the provider, appID, group, kind, the
// members sorted with their roles, reason, message, operator, owner, name,
// type, join type, profile fields and, when the platform sent one, the event time, plus requestID
// (OpenIM's operationID; empty for Tencent). Every part is length-prefixed,
// so no two different events share an input. Key order, escapes, number
// formats and unknown fields of the body do not change it. The first 96
// bits of the SHA-256 are kept, base64url-encoded: 16 characters, half the
// 32 hex digits keys used to take, since every status write carries the
// dedupe window and the journal's keys.
func (ev *GroupEvent) CanonicalKey(requestID string) string {
	h := sha256.New()
	for _, part := range []string{string(ev.Provider), ev.AppID, ev.GroupID, string(ev.Kind), string(ev.Reason),
		ev.Message, ev.Operator, ev.Owner, ev.Name, ev.Type, ev.JoinType, requestID} {
		writePart(h, part)
	}
	for _, f := range []*string{ev.Introduction, ev.Notification, ev.FaceURL} {
		if f == nil {
			writePart(h, "")
		} else {
			writePart(h, "\x01"+*f)
		}
	}
	if !ev.Untimed {
		writePart(h, strconv.FormatInt(ev.EventTime.UnixMicro(), 10))
	}
	members := make([]string, len(ev.Members))
	for i, m := range ev.Members {
		members[i] = m.UserID + "\x00" + string(m.Role)
	}
	sort.Strings(members)
	writePart(h, strconv.Itoa(len(members)))
	for _, m := range members {
		writePart(h, m)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:keyLen])
}

func writePart(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}
