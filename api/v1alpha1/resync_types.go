package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResyncRequestedAnnotation on a ChatGroup or a ChatReceiver requests a
// resync now. Its value is free (by convention a timestamp); the resync
// loop acts on every new value and records the value it handled in
// status.lastSync.requested.
const ResyncRequestedAnnotation = "im.chatgroup.dev/resync-requested-at"

// SyncedCondition is True when the last resync of the object succeeded.
const SyncedCondition = "Synced"

// Synced condition reasons.
const (
	// ResyncSucceededReason: the last pass read the provider's state.
	ResyncSucceededReason = "ResyncSucceeded"
	// ResyncFailedReason: the last pass could not read the provider's
	// state (the message says why); nothing was changed from it.
	ResyncFailedReason = "ResyncFailed"
	// ResyncPartialReason: the member list changed while it was read, so
	// members were left as they were.
	ResyncPartialReason = "ResyncPartial"
	// ResyncNotConfiguredReason: the receiver has no spec.resync.
	ResyncNotConfiguredReason = "ResyncNotConfigured"
)

// ResyncKeyKey is the key of the resync Secret: Tencent's SDK secret key
// (for UserSigs) or the OpenIM server's secret (for admin tokens).
const ResyncKeyKey = "key"

// ResyncSpec configures reading the provider's REST API to repair drift.
type ResyncSpec struct {
	// endpoint is the REST API's base URL: Tencent's region domain (for
	// example https://adminapisgp.im.qcloud.com) or OpenIM's API address
	// (for example http://openim-api:10002).
	// +required
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://[^\s/]+(/[^\s]*)?$`
	Endpoint string `json:"endpoint"`

	// admin is the admin identity: Tencent's App admin account, or an
	// OpenIM admin userID (give the operator its own: each new OpenIM admin
	// token demotes the previous one).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Admin string `json:"admin"`

	// secretRef names a Secret in the receiver's namespace whose `key`
	// holds Tencent's SDK secret key or the OpenIM server secret.
	// +required
	SecretRef SecretReference `json:"secretRef"`

	// interval is the time between passes.
	// +optional
	// +kubebuilder:default="10m"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// discover, when true, creates ChatGroups for groups that exist on the
	// provider but have sent no callback.
	// +optional
	Discover bool `json:"discover,omitempty"`
}

// SyncResult is the outcome of a resync.
// +kubebuilder:validation:Enum=Succeeded;Failed;Partial
type SyncResult string

// The sync results.
const (
	SyncSucceeded SyncResult = "Succeeded"
	SyncFailed    SyncResult = "Failed"
	SyncPartial   SyncResult = "Partial"
)

// SyncStatus is the outcome of the last resync of an object.
type SyncStatus struct {
	// time is when the provider's state was read (the snapshot time).
	// +required
	Time metav1.Time `json:"time"`

	// result is Succeeded, Failed or Partial.
	// +required
	Result SyncResult `json:"result"`

	// message explains a failure.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// corrections counts the drift corrections the resync made.
	// +optional
	Corrections int32 `json:"corrections,omitempty"`

	// groups counts the groups read (receivers only).
	// +optional
	Groups int32 `json:"groups,omitempty"`

	// requested is the value of the resync-requested-at annotation the
	// resync handled.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Requested string `json:"requested,omitempty"`
}
