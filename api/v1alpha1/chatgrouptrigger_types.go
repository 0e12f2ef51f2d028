package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TriggerEvent is a journal entry kind a trigger reacts to. MemberKicked
// matches MembersLeft entries whose reason is Kicked; MembersLeft matches
// every leave.
// +kubebuilder:validation:Enum=MembersJoined;MembersLeft;MemberKicked;Disbanded;Created;InfoChanged;OwnerChanged
type TriggerEvent string

const (
	TriggerMembersJoined TriggerEvent = "MembersJoined"
	TriggerMembersLeft   TriggerEvent = "MembersLeft"
	TriggerMemberKicked  TriggerEvent = "MemberKicked"
	TriggerDisbanded     TriggerEvent = "Disbanded"
	TriggerCreated       TriggerEvent = "Created"
	TriggerInfoChanged   TriggerEvent = "InfoChanged"
	TriggerOwnerChanged  TriggerEvent = "OwnerChanged"
)

// ChatGroupTriggerSpec defines follow-up work for group events.
type ChatGroupTriggerSpec struct {
	// on lists the event kinds that start a Job.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=7
	On []TriggerEvent `json:"on"`

	// selector picks the ChatGroups (in the trigger's namespace) the trigger
	// applies to. An empty selector matches every ChatGroup.
	// +required
	Selector metav1.LabelSelector `json:"selector"`

	// jobTemplate is the Job to create, once per matching journal entry.
	// The event is passed to every container in the CHATGROUP_* environment
	// variables. The template is validated by the API server when the Job
	// is created; errors are reported on the trigger and the group.
	// +required
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	JobTemplate batchv1.JobTemplateSpec `json:"jobTemplate"`

	// ttlAfterDisband, when set, deletes a disbanded ChatGroup this long
	// after its cleanup succeeded.
	// +optional
	TTLAfterDisband *metav1.Duration `json:"ttlAfterDisband,omitempty"`
}

// ChatGroupTriggerStatus is the observed state of a ChatGroupTrigger.
type ChatGroupTriggerStatus struct {
	// observedGeneration is the generation the reconciler last processed.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ChatGroupTrigger starts a Job for each matching group event.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cgt,categories=chat
// +kubebuilder:printcolumn:name="On",type=string,JSONPath=`.spec.on`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ChatGroupTrigger struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec defines the trigger.
	// +required
	Spec ChatGroupTriggerSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status ChatGroupTriggerStatus `json:"status,omitzero"`
}

// ChatGroupTriggerList is a list of ChatGroupTriggers.
// +kubebuilder:object:root=true
type ChatGroupTriggerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ChatGroupTrigger `json:"items"`
}

func init() {
	register(&ChatGroupTrigger{}, &ChatGroupTriggerList{})
}
