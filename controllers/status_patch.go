package controllers

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ownedStatusPatch builds a JSON merge patch for the status subresource
// that sets exactly the given fields (a nil list becomes null, which
// removes it).
//
// The patch is written out field by field rather than computed with
// client.MergeFrom(base): status is `omitzero` and some fields the callback
// server owns (disbanded, memberCount) are always serialised, so when the
// base was read before the first status write its JSON has no status at
// all, and a diff against it would carry `"disbanded": false` and
// `"memberCount": 0`, silently undoing a concurrent write by the callback
// server.
func ownedStatusPatch(fields map[string]any) (client.Patch, error) {
	data, err := json.Marshal(map[string]any{"status": fields})
	if err != nil {
		return nil, fmt.Errorf("encoding status patch: %w", err)
	}
	return client.RawPatch(types.MergePatchType, data), nil
}
