package v1alpha1

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// ChatGroupName derives the ChatGroup name for a platform group:
// <provider>-<sanitized id prefix, at most 30 chars>-<first 20 hex chars
// (80 bits) of the SHA-256 of provider, appID and groupID, each
// length-prefixed>. Group IDs are case-sensitive and may hold '@' and '#',
// so they are never used as names directly; the hash keeps names of
// different groups apart, and its input is unambiguous. A name is at most
// 59 characters.
func ChatGroupName(provider Provider, appID, groupID string) string {
	h := sha256.New()
	for _, part := range []string{string(provider), appID, groupID} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write([]byte(part))
	}
	hash := hex.EncodeToString(h.Sum(nil))[:20]

	const maxPrefix = 30
	var b strings.Builder
	lastDash := true // no leading dash
	for _, r := range strings.ToLower(groupID) {
		if b.Len() >= maxPrefix {
			break
		}
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			lastDash = false
		case !lastDash:
			b.WriteByte('-')
			lastDash = true
		}
	}
	prefix := strings.TrimSuffix(b.String(), "-")

	name := strings.ToLower(string(provider)) + "-"
	if prefix != "" {
		name += prefix + "-"
	}
	return name + hash
}

// WebhookPathPrefix is where every receiver's webhook path starts.
const WebhookPathPrefix = "/callbacks/"

// WebhookPath derives a ChatReceiver's webhook path from its namespace, name
// and token: /callbacks/<sha256 of namespace/name/token>. The token makes
// the path unguessable; OpenIM appends /<command> to it.
func WebhookPath(namespace, name, token string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name + "/" + token))
	return WebhookPathPrefix + hex.EncodeToString(sum[:])
}

// MaskWebhookPath shortens a path under a receiver's webhook path for
// display: the webhook path is a credential (for OpenIM the only one), so
// only the first 8 of its 64 hex digits are kept, then "…", then what
// follows (OpenIM's command). Other paths are returned as they are.
func MaskWebhookPath(p string) string {
	rest, ok := strings.CutPrefix(p, WebhookPathPrefix)
	if !ok || len(rest) < sha256.Size*2 {
		return p
	}
	return WebhookPathPrefix + rest[:8] + "…" + rest[sha256.Size*2:]
}

// maxLabelValueLength is the Kubernetes limit on label values.
const maxLabelValueLength = 63

// ToLabelValue makes an object name usable as a label value. Names longer
// than a label value allows (object names may have 253 characters) are cut
// and given a hash suffix, so that they stay distinct.
func ToLabelValue(name string) string {
	if len(name) <= maxLabelValueLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	prefix := strings.TrimRight(name[:maxLabelValueLength-11], "-._")
	return prefix + "-" + hex.EncodeToString(sum[:])[:10]
}

// GroupLabels are the labels of the ChatGroups a receiver creates: its
// groupLabels plus the provider, receiver and (when it is a valid label
// value) appID labels. The callback server and resync both use it.
func (r *ChatReceiver) GroupLabels() map[string]string {
	labels := make(map[string]string, len(r.Spec.GroupLabels)+3)
	for k, v := range r.Spec.GroupLabels {
		labels[k] = string(v)
	}
	labels[ProviderLabel] = strings.ToLower(string(r.Spec.Provider))
	// Object names may have 253 characters, label values 63 (L8).
	labels[ReceiverLabel] = ToLabelValue(r.Name)
	if len(validation.IsValidLabelValue(r.Spec.AppID)) == 0 && r.Spec.AppID != "" {
		labels[AppIDLabel] = r.Spec.AppID
	}
	return labels
}
