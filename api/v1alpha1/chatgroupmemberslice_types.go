package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels on ChatGroupMemberSlices. GroupLabel names the ChatGroup, so
// `kubectl get chatgroupmemberslices -l im.chatgroup.dev/chatgroup=<name>`
// lists every member of a sliced group.
const (
	// SliceGenerationLabel is the generation of the slice set a slice
	// belongs to; only the generation named in the ChatGroup's
	// status.memberSlices holds members, others are leftovers being removed.
	SliceGenerationLabel = "im.chatgroup.dev/slice-generation"
)

// MaxSliceMembers is the schema's bound on one slice's members. The
// committer fills slices to far less (see docs/delivery.md), so that
// a join rewrites a small object.
const MaxSliceMembers = 1000

// MaxDeltaMembers bounds the members listed in status.memberSlices.added
// and .removed: a bulk join of up to 1,000 members still updates only the
// slices it touches, and the status write that carries it (at most a few
// hundred KiB, once) stays far below etcd's request limit. A commit with a
// larger change writes a new generation of slices instead.
const MaxDeltaMembers = 1000

// MemberSlicesStatus says where a sliced ChatGroup's members are, and
// carries the change its last commit made to them, so that slices can be
// brought up to date from the status after a crash.
type MemberSlicesStatus struct {
	// generation selects the ChatGroupMemberSlices that hold the members:
	// those labelled im.chatgroup.dev/slice-generation=<generation>. It is
	// unique per rewrite of all slices (a timestamp), so that two writers
	// never fill the same generation.
	// +required
	// +kubebuilder:validation:Minimum=1
	Generation int64 `json:"generation"`

	// slices is how many slices the generation has; a member is in slice
	// FNV-32a(userID) mod slices.
	// +required
	// +kubebuilder:validation:Minimum=1
	Slices int32 `json:"slices"`

	// seq counts the commits that changed the members. Each slice records
	// the seq it was last written for; every slice reflects this seq once
	// added and removed are applied to it.
	// +optional
	Seq int64 `json:"seq,omitempty"`

	// listed is the number of members the slices hold: memberCount, unless
	// the group has more members than the operator lists (MembersTruncated).
	// +optional
	Listed int32 `json:"listed,omitempty"`

	// added are the members the last commit added or changed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	Added []GroupMember `json:"added,omitempty"`

	// removed are the user IDs the last commit removed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	Removed []string `json:"removed,omitempty"`
}

// ChatGroupMemberSlice holds some of the members of a large ChatGroup,
// like an EndpointSlice holds some of a Service's endpoints. The ChatGroup
// owns its slices; the callback server writes them after each commit of
// the ChatGroup's status, which stays the commit record.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=cgms,categories=chat
// +kubebuilder:printcolumn:name="Group",type=string,JSONPath=`.group`
// +kubebuilder:printcolumn:name="Index",type=integer,JSONPath=`.index`
// +kubebuilder:printcolumn:name="Members",type=integer,JSONPath=`.memberCount`
// +kubebuilder:printcolumn:name="Seq",type=integer,JSONPath=`.seq`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ChatGroupMemberSlice struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// group is the name of the ChatGroup the members belong to.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Group string `json:"group"`

	// index is the slice's place in its generation.
	// +required
	// +kubebuilder:validation:Minimum=0
	Index int32 `json:"index"`

	// seq is the ChatGroup's status.memberSlices.seq this slice was last
	// written for.
	// +optional
	Seq int64 `json:"seq,omitempty"`

	// memberCount is the number of members listed.
	// +optional
	MemberCount int32 `json:"memberCount"`

	// members are this slice's members, sorted by userID.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	Members []GroupMember `json:"members,omitempty"`
}

// ChatGroupMemberSliceList is a list of ChatGroupMemberSlices.
// +kubebuilder:object:root=true
type ChatGroupMemberSliceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ChatGroupMemberSlice `json:"items"`
}

func init() {
	register(&ChatGroupMemberSlice{}, &ChatGroupMemberSliceList{})
}
