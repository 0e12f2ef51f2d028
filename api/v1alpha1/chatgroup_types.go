package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provider names an IM platform whose callbacks the operator understands.
// +kubebuilder:validation:Enum=Tencent;OpenIM
type Provider string

const (
	// ProviderTencent is Tencent Cloud Chat (IM).
	ProviderTencent Provider = "Tencent"
	// ProviderOpenIM is the open-source OpenIM server.
	ProviderOpenIM Provider = "OpenIM"
)

// EventKind is the provider-neutral kind of a group event.
// +kubebuilder:validation:Enum=Created;MembersJoined;MembersLeft;Disbanded;InfoChanged;OwnerChanged
type EventKind string

const (
	EventCreated       EventKind = "Created"
	EventMembersJoined EventKind = "MembersJoined"
	EventMembersLeft   EventKind = "MembersLeft"
	EventDisbanded     EventKind = "Disbanded"
	EventInfoChanged   EventKind = "InfoChanged"
	EventOwnerChanged  EventKind = "OwnerChanged"
)

// LeaveReason says why members left a group (Quit, Kicked).
// Resync marks the events resync made from the provider's state.
// +kubebuilder:validation:Enum=Quit;Kicked;Resync
type LeaveReason string

const (
	LeaveQuit   LeaveReason = "Quit"
	LeaveKicked LeaveReason = "Kicked"
	LeaveResync LeaveReason = "Resync"
)

// MemberRole is a member's role in a group.
// +kubebuilder:validation:Enum=Owner;Admin;Member
type MemberRole string

const (
	RoleOwner  MemberRole = "Owner"
	RoleAdmin  MemberRole = "Admin"
	RoleMember MemberRole = "Member"
)

// ChatGroupSpec identifies the IM group this object mirrors. It is set when
// the object is created and never changes.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
type ChatGroupSpec struct {
	// provider is the IM platform that owns the group.
	// +required
	Provider Provider `json:"provider"`

	// appID is the platform application the group belongs to: the Tencent
	// SDKAppID, or the receiver's appID for OpenIM (empty on groups made
	// before receivers needed one).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	AppID string `json:"appID,omitempty"`

	// groupID is the exact, case-sensitive group ID on the platform.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	GroupID string `json:"groupID"`
}

// GroupMember is one current member of a group.
type GroupMember struct {
	// userID is the member's user ID on the platform.
	// +required
	// +kubebuilder:validation:MaxLength=256
	UserID string `json:"userID"`

	// role is the member's role, when known.
	// +optional
	Role MemberRole `json:"role,omitempty"`

	// joinedAt is the time of the event that added the member. It is
	// empty when only a role change has named the member so far.
	// +optional
	JoinedAt *metav1.MicroTime `json:"joinedAt,omitempty"`

	// roleTime is the time of the event that set role: roles are
	// last-writer-wins by it, so they do not depend on arrival order. It is
	// omitted when it equals joinedAt.
	// +optional
	RoleTime *metav1.MicroTime `json:"roleTime,omitempty"`
}

// Departure records a member who left. Departures also serve as tombstones:
// a join older than the departure is ignored.
type Departure struct {
	// userID is the user who left.
	// +required
	// +kubebuilder:validation:MaxLength=256
	UserID string `json:"userID"`

	// reason says whether the user quit or was kicked.
	// +required
	Reason LeaveReason `json:"reason"`

	// operator is the user who removed the member, when the platform says.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Operator string `json:"operator,omitempty"`

	// message is the platform's reason text for a kick, when it sends one.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// at is the time of the leave event.
	// +required
	At metav1.MicroTime `json:"at"`
}

// ProfileField is a group profile value and the time of the event that set
// it.
type ProfileField struct {
	// value is the field's value.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`

	// time is the time of the event that set value.
	// +required
	Time metav1.MicroTime `json:"time"`
}

// LastEvent describes the most recently applied event.
type LastEvent struct {
	// kind is the event's kind.
	// +required
	Kind EventKind `json:"kind"`

	// time is the event's time: the platform's EventTime, or the arrival
	// time when the platform sends none.
	// +required
	Time metav1.MicroTime `json:"time"`

	// key is the event's deduplication key.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Key string `json:"key"`
}

// JournalEntry is one applied event in the bounded journal. Triggers start
// Jobs from journal entries.
type JournalEntry struct {
	// seq is the entry's sequence number, monotonic per ChatGroup.
	// +required
	// +kubebuilder:validation:Minimum=1
	Seq int64 `json:"seq"`

	// kind is the event's kind.
	// +required
	Kind EventKind `json:"kind"`

	// reason is Quit or Kicked for MembersLeft entries.
	// +optional
	Reason LeaveReason `json:"reason,omitempty"`

	// message is free text from the platform, such as a kick reason.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// members are the users the event is about (at most 256 are listed).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	Members []string `json:"members,omitempty"`

	// membersOmitted counts the users left out of members.
	// +optional
	MembersOmitted int32 `json:"membersOmitted,omitempty"`

	// operator is the user who caused the event, when the platform says.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Operator string `json:"operator,omitempty"`

	// joinType says how members joined (MembersJoined), when the platform
	// says: Apply or Invited (Tencent), Invited, Search or QRCode (OpenIM).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	JoinType string `json:"joinType,omitempty"`

	// time is the event's time.
	// +required
	Time metav1.MicroTime `json:"time"`

	// key is the event's deduplication key.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Key string `json:"key"`
}

// JobOutcome is the state of a Job started by a trigger.
// +kubebuilder:validation:Enum=Running;Succeeded;Failed
type JobOutcome string

const (
	JobRunning   JobOutcome = "Running"
	JobSucceeded JobOutcome = "Succeeded"
	JobFailed    JobOutcome = "Failed"
)

// TriggerStatus is the progress of one ChatGroupTrigger on this group.
type TriggerStatus struct {
	// name is the ChatGroupTrigger's name.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// cursor is the highest journal seq the trigger has handled.
	// +required
	Cursor int64 `json:"cursor"`

	// lastJob is the name of the last Job the trigger started.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	LastJob string `json:"lastJob,omitempty"`

	// lastJobSeq is the journal seq the last Job was started for.
	// +optional
	LastJobSeq int64 `json:"lastJobSeq,omitempty"`

	// lastJobOutcome is the last Job's state.
	// +optional
	LastJobOutcome JobOutcome `json:"lastJobOutcome,omitempty"`

	// missed counts journal entries that left the ring before the trigger
	// saw them.
	// +optional
	Missed int64 `json:"missed,omitempty"`

	// lastDelivery is the outcome of the trigger's last CloudEvent delivery
	// attempt for this group.
	// +optional
	LastDelivery *CloudEventDelivery `json:"lastDelivery,omitempty"`

	// deliveriesFailed counts the journal entries whose CloudEvent the
	// trigger gave up on (permanent failures).
	// +optional
	DeliveriesFailed int64 `json:"deliveriesFailed,omitempty"`
}

// CloudEventDelivery is the outcome of one CloudEvent delivery.
type CloudEventDelivery struct {
	// seq is the journal seq the event was built from.
	// +required
	Seq int64 `json:"seq"`

	// id is the event's id: the ChatGroup's UID and the seq.
	// +required
	// +kubebuilder:validation:MaxLength=128
	ID string `json:"id"`

	// outcome is Delivered, Retrying or Failed.
	// +required
	Outcome DeliveryOutcome `json:"outcome"`

	// reason is a CamelCase reason, such as Delivered, SinkError,
	// RateLimited, NetworkError, Timeout or Rejected.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason,omitempty"`

	// code is the sink's last HTTP status, when it answered.
	// +optional
	Code int32 `json:"code,omitempty"`

	// attempts counts the HTTP attempts of the last round of sending.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`

	// message says what happened. It never contains the sink's URL or reply.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// time is when the outcome was recorded.
	// +required
	Time metav1.Time `json:"time"`
}

// ChatGroupStatus mirrors the group. The callback server owns every field
// except conditions, observedGeneration, announcedSeq and triggers, which the
// ChatGroup reconciler owns.
type ChatGroupStatus struct {
	// observedGeneration is the generation the reconciler last processed.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Disbanded, CleanupSucceeded, MembersTruncated,
	// EventsMissed and Synced.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// name is the group's display name.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Name string `json:"name,omitempty"`

	// nameTime is the time of the event that set name.
	// +optional
	NameTime *metav1.MicroTime `json:"nameTime,omitempty"`

	// introduction, notification and faceURL are the group's profile
	// fields, each with the time of the event that set it
	// (last-writer-wins).
	// +optional
	Introduction *ProfileField `json:"introduction,omitempty"`
	// +optional
	Notification *ProfileField `json:"notification,omitempty"`
	// +optional
	FaceURL *ProfileField `json:"faceURL,omitempty"`

	// infoTime is the time of the newest profile change (InfoChanged
	// without members): an InfoChanged event that is not newer is stale and
	// not journaled again.
	// +optional
	InfoTime *metav1.MicroTime `json:"infoTime,omitempty"`

	// createdTime is the time of the newest Created event: the start of the
	// current incarnation. A disband older than it only moves the fence.
	// +optional
	CreatedTime *metav1.MicroTime `json:"createdTime,omitempty"`

	// type is the group type, normalised (Work, Public, Meeting, AVChatRoom,
	// Community).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Type string `json:"type,omitempty"`

	// owner is the owner's user ID.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Owner string `json:"owner,omitempty"`

	// ownerTime is the time of the event that set owner.
	// +optional
	OwnerTime *metav1.MicroTime `json:"ownerTime,omitempty"`

	// members are the current members, sorted by userID, for groups below
	// the slicing threshold. Larger groups keep their members in
	// ChatGroupMemberSlices (see memberSlices) and leave this empty. Above
	// the member bound the members are truncated and memberCount stays
	// exact.
	// +optional
	// Atomic, not a map keyed by userID: only the callback server writes
	// the list, and an atomic list costs the API server markedly less per
	// write of a large group (docs/benchmarks.md).
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50000
	Members []GroupMember `json:"members,omitempty"`

	// memberCount is the number of current members. It is always written,
	// so that kubectl prints 0 rather than <none>.
	// +optional
	// +kubebuilder:default=0
	MemberCount int32 `json:"memberCount"`

	// memberSlices is set when the members are kept in
	// ChatGroupMemberSlices instead of in members.
	// +optional
	MemberSlices *MemberSlicesStatus `json:"memberSlices,omitempty"`

	// departed are recent departures, newest last; bounded.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5000
	Departed []Departure `json:"departed,omitempty"`

	// disbanded is true once the group has been disbanded. It stays true
	// until a Created event newer than disbandedAt starts a new incarnation.
	// It is always written, so that kubectl prints false rather than <none>.
	// +optional
	// +kubebuilder:default=false
	Disbanded bool `json:"disbanded"`

	// disbandedAt is the time of the last disband. Events older than it are
	// ignored, even after a new incarnation.
	// +optional
	DisbandedAt *metav1.MicroTime `json:"disbandedAt,omitempty"`

	// finalRoster is true when the last disband carried the platform's
	// final member list, which then replaces the membership: member events
	// older than the disband are ignored. Without a final roster they still
	// update the frozen membership (last-writer-wins, not journaled).
	// +optional
	FinalRoster bool `json:"finalRoster,omitempty"`

	// lastEvent is the most recently applied event.
	// +optional
	LastEvent *LastEvent `json:"lastEvent,omitempty"`

	// lastSync is the outcome of the last resync of this group.
	// +optional
	LastSync *SyncStatus `json:"lastSync,omitempty"`

	// eventsApplied counts applied events (duplicates and stale events are
	// not counted).
	// +optional
	EventsApplied int64 `json:"eventsApplied,omitempty"`

	// recentKeys is the deduplication window: the keys of recently received
	// events, oldest first. The key of an event without a platform time
	// carries its arrival time after a "~" (base 36 Unix microseconds): it
	// is a duplicate only within a minute and only while nothing newer has
	// touched the same members or fields.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1024
	RecentKeys []string `json:"recentKeys,omitempty"`

	// journal is a bounded ring of recently applied events, oldest first.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1024
	Journal []JournalEntry `json:"journal,omitempty"`

	// lastSeq is the seq of the newest journal entry.
	// +optional
	LastSeq int64 `json:"lastSeq,omitempty"`

	// announcedSeq is the highest journal seq the reconciler has published
	// as a Kubernetes Event.
	// +optional
	AnnouncedSeq int64 `json:"announcedSeq,omitempty"`

	// triggers records each matching trigger's progress.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Triggers []TriggerStatus `json:"triggers,omitempty"`
}

// ChatGroup mirrors one IM group. The callback server creates it on the
// first event and keeps its status; users may pre-create it to add labels.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cg,categories=chat
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="Group",type=string,JSONPath=`.spec.groupID`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.status.type`
// +kubebuilder:printcolumn:name="Members",type=integer,JSONPath=`.status.memberCount`
// +kubebuilder:printcolumn:name="Disbanded",type=boolean,JSONPath=`.status.disbanded`
// +kubebuilder:printcolumn:name="Last Event",type=string,JSONPath=`.status.lastEvent.kind`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Owner",type=string,JSONPath=`.status.owner`,priority=10
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=10
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`,priority=10
type ChatGroup struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec identifies the group.
	// +required
	Spec ChatGroupSpec `json:"spec"`

	// status mirrors the group's state. It defaults to an empty object so
	// that memberCount and disbanded are always present: a merge patch
	// never carries a field whose value did not change.
	// +optional
	// +kubebuilder:default={}
	Status ChatGroupStatus `json:"status,omitzero"`
}

// ChatGroupList is a list of ChatGroups.
// +kubebuilder:object:root=true
type ChatGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ChatGroup `json:"items"`
}

func init() {
	register(&ChatGroup{}, &ChatGroupList{})
}
