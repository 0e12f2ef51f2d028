package webhookserver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// eventKey derives the deduplication key of a callback from its content.
// Neither provider sends an event ID, so the key is sha256 over the
// provider, appID, command, the provider's request ID (OpenIM's operation
// ID, which tells apart two identical quits of the same user) and
// the body with insignificant whitespace removed. Volatile parts of the
// request (a signature and its time) are left out, so a re-signed retry
// has the same key. The first 32 hex digits (128 bits) are kept.
func eventKey(provider imv1.Provider, appID, command, requestID string, body []byte) string {
	h := sha256.New()
	for _, part := range []string{string(provider), appID, command, requestID} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err == nil {
		h.Write(compact.Bytes())
	} else {
		h.Write(body)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
