// Package cloudevent delivers ChatGroup journal entries as CloudEvents 1.0
// in HTTP binary mode (DESIGN.md section 5): it builds the event, signs the
// body like Flux's generic-hmac Receiver expects, sends it with retries
// inside a bounded budget, and classifies the outcome for the trigger's
// status. It holds no cursor: the caller moves its cursor only when Send
// reports Delivered.
package cloudevent

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"k8s.io/apimachinery/pkg/types"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// TypePrefix starts the type of every event; the journal entry's kind
// follows, as in dev.chatgroup.v1alpha1.Disbanded.
const TypePrefix = "dev.chatgroup.v1alpha1."

// Entry is one journal entry of one ChatGroup, with what the event needs
// of the group.
type Entry struct {
	// Namespace and Name are the ChatGroup's.
	Namespace string
	Name      string
	// UID is the ChatGroup's UID: a re-created group starts its journal
	// again at seq 1, so the UID keeps their event ids apart.
	UID types.UID
	// GroupID is the provider's group ID (the event's subject).
	GroupID string
	// Kind is the journal entry's kind.
	Kind imv1.EventKind
	// Seq is the journal entry's seq.
	Seq int64
	// Time is the event's time.
	Time time.Time
	// Data is the CHATGROUP_EVENT_JSON document, sent as the body as is.
	Data []byte
}

// ID is the event's id: deterministic per (ChatGroup UID, seq), so every
// retry and every redelivery after a crash carries the same id and sinks
// can deduplicate.
func (e *Entry) ID() string {
	return fmt.Sprintf("%s-%d", e.UID, e.Seq)
}

// Source is the event's source: the ChatGroup's API path.
func (e *Entry) Source() string {
	return fmt.Sprintf("/apis/%s/namespaces/%s/chatgroups/%s", imv1.GroupVersion.String(), e.Namespace, e.Name)
}

// Type is the event's type, TypePrefix followed by the entry's kind.
func (e *Entry) Type() string {
	return TypePrefix + string(e.Kind)
}

// reservedAttributes are the context attributes an extension must not
// replace.
var reservedAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "subject": true,
	"time": true, "datacontenttype": true, "dataschema": true, "data": true, "data_base64": true,
}

// Build returns the CloudEvent for an entry, with the given extension
// attributes. An error means the event can never be sent (a permanent
// failure).
func Build(e *Entry, extensions map[string]string) (cloudevents.Event, error) {
	ev := cloudevents.NewEvent(cloudevents.VersionV1)
	switch {
	case e.Namespace == "" || e.Name == "" || e.UID == "":
		return ev, errors.New("the ChatGroup's namespace, name and UID are required")
	case e.GroupID == "":
		return ev, errors.New("the provider group ID is required")
	case e.Kind == "":
		return ev, errors.New("the event kind is required")
	case e.Seq < 1:
		return ev, fmt.Errorf("invalid seq %d", e.Seq)
	case e.Time.IsZero():
		return ev, errors.New("the event time is required")
	case !json.Valid(e.Data):
		return ev, errors.New("the event data is not valid JSON")
	}
	ev.SetID(e.ID())
	ev.SetSource(e.Source())
	ev.SetType(e.Type())
	ev.SetSubject(e.GroupID)
	ev.SetTime(e.Time.UTC())
	// A []byte is stored as is: in binary mode these are exactly the body
	// bytes, which the signature covers.
	if err := ev.SetData(cloudevents.ApplicationJSON, e.Data); err != nil {
		return ev, fmt.Errorf("setting the data: %w", err)
	}
	for name, value := range extensions {
		if err := validateExtensionName(name); err != nil {
			return ev, err
		}
		ev.SetExtension(name, value)
	}
	if err := ev.Validate(); err != nil {
		return ev, fmt.Errorf("invalid event: %w", err)
	}
	return ev, nil
}
