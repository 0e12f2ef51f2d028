// Package v1alpha1 contains the API types of the im.chatgroup.dev group:
// ChatGroup, ChatReceiver and ChatGroupTrigger.
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
