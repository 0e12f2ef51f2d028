package v1alpha1

// Condition types. Ready is the positive summary; the others describe one
// aspect each, following the kstatus conventions.
const (
	// ReadyCondition is True when the object is fully reconciled and healthy.
	ReadyCondition = "Ready"
	// DisbandedCondition is True when the IM group has been disbanded.
	DisbandedCondition = "Disbanded"
	// CleanupSucceededCondition is set on disbanded groups: True once every
	// Job started for the disband event by a matching trigger succeeded.
	CleanupSucceededCondition = "CleanupSucceeded"
	// MembersTruncatedCondition is True when status.members holds fewer
	// entries than status.memberCount because of the member bound.
	MembersTruncatedCondition = "MembersTruncated"
	// EventsMissedCondition is True when journal entries fell out of the
	// ring before a trigger saw them.
	EventsMissedCondition = "EventsMissed"
	// StalledCondition is True when reconciling cannot make progress
	// without a change by the user.
	StalledCondition = "Stalled"
)

// Condition reasons.
const (
	SucceededReason         = "Succeeded"
	ActiveReason            = "Active"
	GroupDisbandedReason    = "GroupDisbanded"
	NoCleanupTriggersReason = "NoCleanupTriggers"
	JobRunningReason        = "JobRunning"
	JobSucceededReason      = "JobSucceeded"
	JobFailedReason         = "JobFailed"
	MemberBoundReason       = "MemberBoundExceeded"
	JournalOverrunReason    = "JournalOverrun"
	SecretNotFoundReason    = "SecretNotFound"
	TokenNotFoundReason     = "TokenNotFound"
	InvalidSpecReason       = "InvalidSpec"
	// IncompleteBasicAuthReason: a receiver's Secret has a username or a
	// password for basic auth, but not both.
	IncompleteBasicAuthReason = "IncompleteBasicAuth"
	// JobForbiddenReason: a trigger's ServiceAccount may not create its
	// Job (RBAC or admission in the namespace).
	JobForbiddenReason = "JobForbidden"
)

// Secret keys read from a ChatReceiver's secretRef.
const (
	// TokenKey holds the current token.
	TokenKey = "token"
	// PreviousTokenKey optionally holds the token being rotated out. Both
	// are accepted while it is set.
	PreviousTokenKey = "previousToken"
	// UsernameKey and PasswordKey optionally enable HTTP basic auth for
	// OpenIM receivers.
	UsernameKey = "username"
	PasswordKey = "password"
	// HeaderTokenKey optionally requires OpenIM callbacks to carry this
	// value in the X-Chatgroup-Token header, on top of the path.
	HeaderTokenKey = "headerToken"
)

// Labels set on ChatGroups created by the callback server and on Jobs
// created by triggers.
const (
	ProviderLabel = "im.chatgroup.dev/provider"
	AppIDLabel    = "im.chatgroup.dev/app-id"
	ReceiverLabel = "im.chatgroup.dev/receiver"
	GroupLabel    = "im.chatgroup.dev/chatgroup"
	TriggerLabel  = "im.chatgroup.dev/trigger"
	SeqLabel      = "im.chatgroup.dev/seq"
)
