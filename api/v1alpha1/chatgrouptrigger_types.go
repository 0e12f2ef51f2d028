package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
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

// ChatGroupTriggerSpec defines follow-up work for group events: a Job, a
// CloudEvent, or both, for each matching journal entry.
// +kubebuilder:validation:XValidation:rule="has(self.jobTemplate) || has(self.cloudEvent)",message="a trigger needs at least one action: jobTemplate, cloudEvent or both"
type ChatGroupTriggerSpec struct {
	// on lists the event kinds the trigger acts on.
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
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	JobTemplate *batchv1.JobTemplateSpec `json:"jobTemplate,omitempty"`

	// cloudEvent delivers each matching journal entry as a CloudEvent.
	// +optional
	CloudEvent *CloudEventAction `json:"cloudEvent,omitempty"`

	// serviceAccountName is the ServiceAccount, in the trigger's namespace,
	// that the trigger acts as. The operator creates the trigger's Jobs by
	// impersonating it, so the namespace's RBAC and admission policies
	// apply to what the trigger does, not the operator's own identity: the
	// ServiceAccount needs create on Jobs. The Jobs' Pods run as it too,
	// without its API token mounted unless the template sets
	// automountServiceAccountToken. The template may not name another
	// ServiceAccount. Default: the namespace's default ServiceAccount.
	// +optional
	// +kubebuilder:default=default
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// ttlAfterDisband, when set, deletes a disbanded ChatGroup this long
	// after its cleanup succeeded.
	// +optional
	TTLAfterDisband *metav1.Duration `json:"ttlAfterDisband,omitempty"`
}

// CloudEventAction sends each matching journal entry as a CloudEvent 1.0
// (HTTP binary mode) to a sink, at least once, with an id that is the same
// on every retry.
type CloudEventAction struct {
	// url is the sink, an absolute http or https URL. When it is empty the
	// operator's default sink (K_SINK, set by a Knative SinkBinding) is used.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="url must be an absolute http or https URL"
	URL string `json:"url,omitempty"`

	// secretRef names a Secret in the trigger's namespace whose key token
	// signs every body: X-Signature: sha256=<hex HMAC-SHA256(token, body)>.
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`
}

// DeliveryOutcome is what became of a CloudEvent delivery.
// +kubebuilder:validation:Enum=Delivered;Retrying;Failed
type DeliveryOutcome string

const (
	// DeliveryDelivered means the sink answered 2xx.
	DeliveryDelivered DeliveryOutcome = "Delivered"
	// DeliveryRetrying means the sink could not be reached, timed out, or
	// answered 429 or 5xx; the entry is sent again after a backoff.
	DeliveryRetrying DeliveryOutcome = "Retrying"
	// DeliveryFailed means the sink refused the event (another 4xx) or the event
	// cannot be sent; the trigger gave up on the entry and moved on.
	DeliveryFailed DeliveryOutcome = "Failed"
)

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

// ChatGroupTrigger starts a Job, sends a CloudEvent, or both, for each
// matching group event.
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
