package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretReference names a Secret in the receiver's namespace.
type SecretReference struct {
	// name is the Secret's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// RateLimit is a token bucket.
type RateLimit struct {
	// requestsPerSecond is the sustained rate.
	// +required
	// +kubebuilder:validation:Minimum=1
	RequestsPerSecond int32 `json:"requestsPerSecond"`

	// burst is the bucket size.
	// +required
	// +kubebuilder:validation:Minimum=1
	Burst int32 `json:"burst"`
}

// LabelValue is a valid Kubernetes label value.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
type LabelValue string

// ChatReceiverSpec configures one callback endpoint.
// +kubebuilder:validation:XValidation:rule="has(self.appID) && size(self.appID) > 0",message="appID is required: the Tencent SdkAppid, or a name for the OpenIM server, so that two servers' groups never share a ChatGroup"
type ChatReceiverSpec struct {
	// provider is the IM platform that sends the callbacks.
	// +required
	Provider Provider `json:"provider"`

	// appID is the platform application. For Tencent it is the SdkAppid:
	// callbacks whose SdkAppid differs are rejected with 403. OpenIM sends
	// none, so for OpenIM it names the OpenIM server (instance): give each
	// server its own, so that two servers' groups with the same ID stay in
	// separate ChatGroups (it is part of the ChatGroup's name).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	AppID string `json:"appID,omitempty"`

	// secretRef names a Secret holding `token` (and optionally
	// `previousToken` during rotation, and for OpenIM `username`/`password`
	// to require HTTP basic auth and `headerToken` to require an
	// X-Chatgroup-Token header). For Tencent the token verifies Sign; for OpenIM it
	// makes the webhook path unguessable.
	// +required
	SecretRef SecretReference `json:"secretRef"`

	// allowedCIDRs, when set, limits the source addresses callbacks may come
	// from, as CIDRs (a single address is 192.0.2.1/32). Behind an Ingress,
	// the source is the client address read from X-Forwarded-For, if the
	// operator's --trusted-proxies lists the Ingress's addresses.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=64
	AllowedCIDRs []string `json:"allowedCIDRs,omitempty"`

	// groupLabels are copied onto the ChatGroups this receiver creates.
	// Keys and values must be valid Kubernetes label keys and values.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="groupLabels keys must be valid label keys: an optional DNS subdomain prefix and '/', then at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
	GroupLabels map[string]LabelValue `json:"groupLabels,omitempty"`

	// rateLimit bounds the callbacks accepted per second; excess requests get
	// 429.
	// +optional
	// +kubebuilder:default={requestsPerSecond: 2000, burst: 4000}
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// resync, when set, reads the provider's REST API periodically and
	// repairs ChatGroups that missed callbacks.
	// +optional
	Resync *ResyncSpec `json:"resync,omitempty"`
}

// ChatReceiverStatus is the observed state of a ChatReceiver.
type ChatReceiverStatus struct {
	// observedGeneration is the generation the reconciler last processed.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready and Synced.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// webhookPath is where the platform must send callbacks:
	// /callbacks/<sha256 of namespace/name/token>. OpenIM appends
	// /<command>.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	WebhookPath string `json:"webhookPath,omitempty"`

	// previousWebhookPath is the path derived from previousToken; it keeps
	// working while a rotation is under way.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	PreviousWebhookPath string `json:"previousWebhookPath,omitempty"`

	// lastEventTime is when a callback was last accepted. It is updated at
	// most once every 30 seconds.
	// +optional
	LastEventTime *metav1.Time `json:"lastEventTime,omitempty"`

	// lastSync is the outcome of the last resync pass.
	// +optional
	LastSync *SyncStatus `json:"lastSync,omitempty"`

	// disbandFences remember the ChatGroups that ttlAfterDisband deleted
	// recently, with their disband time, so that a late event of the old
	// incarnation does not bring the group back. The ChatGroup reconciler
	// writes them; they are kept for an hour.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	DisbandFences []DisbandFence `json:"disbandFences,omitempty"`
}

// DisbandFence is the disband time of a deleted ChatGroup.
type DisbandFence struct {
	// name is the deleted ChatGroup's name.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// disbandedAt is the group's disbandedAt: events not newer than it do
	// not re-create the group.
	// +required
	DisbandedAt metav1.MicroTime `json:"disbandedAt"`

	// deletedAt is when the ChatGroup was deleted.
	// +required
	DeletedAt metav1.Time `json:"deletedAt"`
}

// DisbandFenceTTL is how long a DisbandFence is kept: longer than any
// delay with which a callback can still arrive.
const DisbandFenceTTL = time.Hour

// FenceFor returns the disband time fencing the ChatGroup name, or nil.
func (s *ChatReceiverStatus) FenceFor(name string) *metav1.MicroTime {
	for i := range s.DisbandFences {
		if s.DisbandFences[i].Name == name {
			return &s.DisbandFences[i].DisbandedAt
		}
	}
	return nil
}

// ChatReceiver configures a callback endpoint for one IM application.
// ChatGroups are created in the receiver's namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cr;chatrcv,categories=chat
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="App",type=string,JSONPath=`.spec.appID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ChatReceiver struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec configures the endpoint.
	// +required
	Spec ChatReceiverSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status ChatReceiverStatus `json:"status,omitzero"`
}

// ChatReceiverList is a list of ChatReceivers.
// +kubebuilder:object:root=true
type ChatReceiverList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ChatReceiver `json:"items"`
}

func init() {
	register(&ChatReceiver{}, &ChatReceiverList{})
}
