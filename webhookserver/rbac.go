package webhookserver

// The callback server reads receivers through the cache and their Secrets
// one by one (get only: it never lists or watches Secrets, see
// internal/secrets), creates ChatGroups and writes their status, records
// lastEventTime on receivers and reports dropped events. It keeps the
// members of large groups in ChatGroupMemberSlices.

// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatreceivers,verbs=get;list;watch
// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatreceivers/status,verbs=get;patch
// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatgroups,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatgroups/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=im.chatgroup.dev,resources=chatgroupmemberslices,verbs=get;list;watch;create;update;delete;deletecollection
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
