// Package v1alpha1 contains the API types of the im.chatgroup.dev group:
// ChatGroup, ChatReceiver and ChatGroupTrigger.
//
// # Glossary
//
// The platforms, the code and this API name the same things differently:
//
//   - Join: a user becomes a member. Tencent: NewMemberJoin (JoinType Apply
//     or Invited); OpenIM: JoinGroup. Event kind MembersJoined.
//   - Leave: a member stops being one, for a LeaveReason: Quit (the member
//     left) or Kicked (someone removed them). Tencent calls both a member
//     exit (MemberExit, told apart by the exit type); OpenIM has QuitGroup and
//     KickGroup. Event kind MembersLeft; triggers can tell kicks apart as
//     MemberKicked.
//   - Departure: the record of a leave in status.departed (a tombstone),
//     which keeps an older join that arrives late from re-adding the member.
//   - Disband: the group ends. Tencent: GroupDestroyed; OpenIM: DismissGroup.
//     Event kind Disbanded; status.disbanded and disbandedAt.
//   - Incarnation: one life of a group ID. A Created event after a disband
//     starts a new incarnation: what was known before the disband is
//     forgotten, except the disband time.
//   - Journal: the last events applied to a group, in status.journal, each
//     with a sequence number; the reconciler announces them as Kubernetes
//     Events and runs the matching triggers.
//
// +kubebuilder:object:generate=true
// +groupName=im.chatgroup.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "im.chatgroup.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme

	// knownTypes is filled by each kind's init function.
	knownTypes []runtime.Object
)

// register records a kind and its list type for addKnownTypes. The API
// package depends only on apimachinery, so that clients can import it
// without controller-runtime.
func register(objs ...runtime.Object) {
	knownTypes = append(knownTypes, objs...)
}

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, knownTypes...)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
