package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// The status fields each reconciler owns, as types. Each type is the one
// list of its fields: the reconciler's status patch carries exactly them
// (ownedStatusPatch), and the ChatGroup watch ignores exactly them
// (withoutOwned). Field names match the status type's; the JSON tags have
// no omitempty, so that an empty list is sent as null, which removes it.
type (
	// groupOwnedStatus is the ChatGroup reconciler's part of a
	// ChatGroupStatus; the callback server owns the rest.
	groupOwnedStatus struct {
		ObservedGeneration int64                `json:"observedGeneration"`
		Conditions         []metav1.Condition   `json:"conditions"`
		AnnouncedSeq       int64                `json:"announcedSeq"`
		Triggers           []imv1.TriggerStatus `json:"triggers"`
	}
	// receiverOwnedStatus is the ChatReceiver reconciler's part of a
	// ChatReceiverStatus; the callback server owns lastEventTime.
	receiverOwnedStatus struct {
		ObservedGeneration  int64              `json:"observedGeneration"`
		Conditions          []metav1.Condition `json:"conditions"`
		WebhookPath         string             `json:"webhookPath"`
		PreviousWebhookPath string             `json:"previousWebhookPath"`
	}
	// triggerOwnedStatus is a ChatGroupTriggerStatus, all of it the
	// ChatGroupTrigger reconciler's.
	triggerOwnedStatus struct {
		ObservedGeneration int64              `json:"observedGeneration"`
		Conditions         []metav1.Condition `json:"conditions"`
	}
)

// ownedPart copies the fields of O out of a status.
func ownedPart[O, S any](st *S) O {
	var owned O
	ov, sv := reflect.ValueOf(&owned).Elem(), reflect.ValueOf(st).Elem()
	for i := range ov.NumField() {
		ov.Field(i).Set(sv.FieldByName(ov.Type().Field(i).Name))
	}
	return owned
}

// withoutOwned returns a shallow copy of a status with the fields of O
// cleared (the shared slices are not modified).
func withoutOwned[O, S any](st S) S {
	ot, sv := reflect.TypeFor[O](), reflect.ValueOf(&st).Elem()
	for i := range ot.NumField() {
		f := sv.FieldByName(ot.Field(i).Name)
		f.Set(reflect.Zero(f.Type()))
	}
	return st
}

// patchOwnedStatus writes the owned part of a status, O, when the status
// changed since base: with a merge patch that holds exactly O's fields
// and no optimistic lock, so that another writer's concurrent writes never
// make it fail, and it can never carry (and overwrite) a field another
// writer owns. The patch goes to an object that names obj; the server's
// answer is decoded into it, and it is returned (nil when nothing was
// written).
func patchOwnedStatus[O, S any](ctx context.Context, c client.Client, obj client.Object, base, st *S) (client.Object, error) {
	if equality.Semantic.DeepEqual(base, st) {
		return nil, nil
	}
	patch, err := ownedStatusPatch(ownedPart[O](st))
	if err != nil {
		return nil, err
	}
	patched := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	patched.SetNamespace(obj.GetNamespace())
	patched.SetName(obj.GetName())
	if err := c.Status().Patch(ctx, patched, patch); err != nil {
		return nil, fmt.Errorf("patching %s status: %w", reflect.TypeOf(obj).Elem().Name(), err)
	}
	return patched, nil
}

// ownedStatusPatch builds a JSON merge patch for the status subresource
// that sets exactly the given fields.
//
// The patch is written out field by field rather than computed with
// client.MergeFrom(base): status is `omitzero` and some fields the callback
// server owns (disbanded, memberCount) are always serialised, so when the
// base was read before the first status write its JSON has no status at
// all, and a diff against it would carry `"disbanded": false` and
// `"memberCount": 0`, silently undoing a concurrent write by the callback
// server. The API also defaults status to {} (see ChatGroup.Status), so
// that stored objects always carry both fields; this patch does not rely
// on that.
func ownedStatusPatch(fields any) (client.Patch, error) {
	data, err := json.Marshal(map[string]any{"status": fields})
	if err != nil {
		return nil, fmt.Errorf("encoding status patch: %w", err)
	}
	return client.RawPatch(types.MergePatchType, data), nil
}
