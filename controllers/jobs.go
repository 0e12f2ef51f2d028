package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/memberslice"
)

// Environment variables passed to every container and init container of a
// trigger's Job. They come first in the container's env; a template
// variable with the same name is dropped. Their values come from callbacks,
// so they are data: scripts must read them as "$CHATGROUP_X" (quoted), and
// a command or args must never put $(CHATGROUP_X) inside a shell string,
// because the kubelet substitutes it into the script's text before the
// shell parses it. CHATGROUP_MEMBERS holds one user ID per line (IDs never
// contain control characters: the decoders reject them).
const (
	EnvName           = "CHATGROUP_NAME"
	EnvNamespace      = "CHATGROUP_NAMESPACE"
	EnvProvider       = "CHATGROUP_PROVIDER"
	EnvAppID          = "CHATGROUP_APP_ID"
	EnvGroupID        = "CHATGROUP_GROUP_ID"
	EnvTrigger        = "CHATGROUP_TRIGGER"
	EnvEvent          = "CHATGROUP_EVENT"
	EnvReason         = "CHATGROUP_REASON"
	EnvSeq            = "CHATGROUP_SEQ"
	EnvMembers        = "CHATGROUP_MEMBERS"
	EnvMembersOmitted = "CHATGROUP_MEMBERS_OMITTED"
	EnvMemberSlices   = "CHATGROUP_MEMBER_SLICES"
	EnvOperator       = "CHATGROUP_OPERATOR"
	EnvEventTime      = "CHATGROUP_EVENT_TIME"
	EnvEventJSON      = "CHATGROUP_EVENT_JSON"
)

const (
	// maxJobNameLength leaves room for the suffixes Kubernetes appends to
	// names derived from the Job's (the same bound CronJob uses).
	maxJobNameLength = 52
	// jobHashLength is the number of hex characters of the name hash: 64
	// bits, so collisions between the Jobs of one trigger are negligible
	// even with millions of Jobs (and they are detected through labels).
	jobHashLength = 16
)

// jobName derives the name of the Job a trigger starts for one journal
// entry: <trigger name, sanitized and truncated>-<16 hex chars of sha256 of
// the group's namespace, name and UID, the trigger name and the seq>.
//
// The name is deterministic so that creating it is idempotent: a crash
// between creating the Job and recording the trigger's cursor cannot start
// the work twice. The group's UID is included because a re-created group
// starts its journal again at seq 1 and must not collide with the Jobs of
// the previous one. The trigger's name (not its UID) is used so that
// re-creating a trigger, as GitOps tools do, does not run its Jobs again.
func jobName(cg *imv1.ChatGroup, trigger string, seq int64) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%s/%s/%d", cg.Namespace, cg.Name, cg.UID, trigger, seq))
	hash := hex.EncodeToString(sum[:])[:jobHashLength]
	return dnsLabelPrefix(trigger, maxJobNameLength-1-jobHashLength, "trigger") + "-" + hash
}

// dnsLabelPrefix turns s into the start of a DNS-1123 label of at most max
// characters: lower case alphanumerics and '-', starting and ending with an
// alphanumeric. It returns fallback when nothing is left.
func dnsLabelPrefix(s string, maxLen int, fallback string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if b.Len() >= maxLen {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	if out := strings.Trim(b.String(), "-"); out != "" {
		return out
	}
	return fallback
}

// labelValue makes an object name usable as a label value.
func labelValue(name string) string { return imv1.ToLabelValue(name) }

// jobLabels are the labels that tie a Job to its group, trigger and journal
// entry. They are also how an existing Job is recognised as ours.
func jobLabels(cg *imv1.ChatGroup, trigger string, seq int64) map[string]string {
	return map[string]string{
		imv1.GroupLabel:   labelValue(cg.Name),
		imv1.TriggerLabel: labelValue(trigger),
		imv1.SeqLabel:     strconv.FormatInt(seq, 10),
	}
}

// isJobFor reports whether an existing Job was created for this group,
// trigger and seq: it carries the labels and the group controls it. The
// labels alone are not enough, since the name is predictable: someone who
// may create Jobs could otherwise plant a no-op "cleanup" (security audit
// L6).
func isJobFor(job *batchv1.Job, cg *imv1.ChatGroup, trigger string, seq int64) bool {
	if !metav1.IsControlledBy(job, cg) {
		return false
	}
	for k, v := range jobLabels(cg, trigger, seq) {
		if job.Labels[k] != v {
			return false
		}
	}
	return true
}

// defaultServiceAccount is the ServiceAccount a trigger without
// serviceAccountName acts as (the CRD sets it as the default too).
const defaultServiceAccount = "default"

// triggerServiceAccount is the ServiceAccount a trigger acts as.
func triggerServiceAccount(trig *imv1.ChatGroupTrigger) string {
	if trig.Spec.ServiceAccountName == "" {
		return defaultServiceAccount
	}
	return trig.Spec.ServiceAccountName
}

// buildJob renders a trigger's jobTemplate for one journal entry. The Pods
// run as the trigger's ServiceAccount, without its API token unless the
// template asks for it. The caller sets the owner reference.
func buildJob(cg *imv1.ChatGroup, trig *imv1.ChatGroupTrigger, entry *imv1.JournalEntry) (*batchv1.Job, error) {
	tmpl := trig.Spec.JobTemplate.DeepCopy()
	labels := jobLabels(cg, trig.Name, entry.Seq)
	env, err := jobEnv(cg, trig.Name, entry)
	if err != nil {
		return nil, err
	}

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        jobName(cg, trig.Name, entry.Seq),
			Namespace:   cg.Namespace,
			Labels:      mergeLabels(tmpl.Labels, labels),
			Annotations: tmpl.Annotations,
		},
		Spec: tmpl.Spec,
	}
	podTmpl := &job.Spec.Template
	podTmpl.Labels = mergeLabels(podTmpl.Labels, labels)
	podTmpl.Spec.ServiceAccountName = triggerServiceAccount(trig)
	podTmpl.Spec.DeprecatedServiceAccount = ""
	if podTmpl.Spec.AutomountServiceAccountToken == nil {
		podTmpl.Spec.AutomountServiceAccountToken = ptr.To(false)
	}
	for i := range podTmpl.Spec.InitContainers {
		podTmpl.Spec.InitContainers[i].Env = withEnv(podTmpl.Spec.InitContainers[i].Env, env)
	}
	for i := range podTmpl.Spec.Containers {
		podTmpl.Spec.Containers[i].Env = withEnv(podTmpl.Spec.Containers[i].Env, env)
	}
	return job, nil
}

// mergeLabels returns base with extra added; extra wins.
func mergeLabels(base, extra map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// withEnv puts ours first and drops the container's variables that have
// the same names.
func withEnv(theirs, ours []corev1.EnvVar) []corev1.EnvVar {
	taken := make(map[string]bool, len(ours))
	out := make([]corev1.EnvVar, 0, len(ours)+len(theirs))
	for _, e := range ours {
		taken[e.Name] = true
		out = append(out, e)
	}
	for _, e := range theirs {
		if !taken[e.Name] {
			out = append(out, e)
		}
	}
	return out
}

// jobEvent is the CHATGROUP_EVENT_JSON document: the group's identity and
// the whole journal entry.
type jobEvent struct {
	Namespace      string         `json:"namespace"`
	Name           string         `json:"name"`
	Provider       imv1.Provider  `json:"provider"`
	AppID          string         `json:"appID,omitempty"`
	GroupID        string         `json:"groupID"`
	Trigger        string         `json:"trigger"`
	Seq            int64          `json:"seq"`
	Kind           imv1.EventKind `json:"kind"`
	Reason         string         `json:"reason,omitempty"`
	Members        []string       `json:"members,omitempty"`
	MembersOmitted int32          `json:"membersOmitted,omitempty"`
	MemberSlices   string         `json:"memberSlices,omitempty"`
	Operator       string         `json:"operator,omitempty"`
	Message        string         `json:"message,omitempty"`
	JoinType       string         `json:"joinType,omitempty"`
	Time           string         `json:"time"`
	Key            string         `json:"key"`
}

// eventJSON is the CHATGROUP_EVENT_JSON document of a journal entry, which
// is also the data of its CloudEvent.
func eventJSON(cg *imv1.ChatGroup, trigger string, e *imv1.JournalEntry) ([]byte, error) {
	doc, err := json.Marshal(jobEvent{
		Namespace: cg.Namespace, Name: cg.Name,
		Provider: cg.Spec.Provider, AppID: cg.Spec.AppID, GroupID: cg.Spec.GroupID,
		Trigger: trigger, Seq: e.Seq, Kind: e.Kind, Reason: string(e.Reason),
		Members: e.Members, MembersOmitted: e.MembersOmitted, MemberSlices: memberSlicesSelector(cg),
		Operator: e.Operator, Message: e.Message, JoinType: e.JoinType, Time: e.Time.UTC().Format(time.RFC3339Nano), Key: e.Key,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the event: %w", err)
	}
	return doc, nil
}

// jobEnv is the event passed to a Job, as individual variables and as one
// JSON document.
func jobEnv(cg *imv1.ChatGroup, trigger string, e *imv1.JournalEntry) ([]corev1.EnvVar, error) {
	eventTime := e.Time.UTC().Format(time.RFC3339Nano)
	doc, err := eventJSON(cg, trigger, e)
	if err != nil {
		return nil, err
	}
	vars := []struct{ name, value string }{
		{EnvName, cg.Name},
		{EnvNamespace, cg.Namespace},
		{EnvProvider, string(cg.Spec.Provider)},
		{EnvAppID, cg.Spec.AppID},
		{EnvGroupID, cg.Spec.GroupID},
		{EnvTrigger, trigger},
		{EnvEvent, string(e.Kind)},
		{EnvReason, string(e.Reason)},
		{EnvSeq, strconv.FormatInt(e.Seq, 10)},
		{EnvMembers, strings.Join(e.Members, "\n")},
		{EnvMembersOmitted, strconv.FormatInt(int64(e.MembersOmitted), 10)},
		{EnvMemberSlices, memberSlicesSelector(cg)},
		{EnvOperator, e.Operator},
		{EnvEventTime, eventTime},
		{EnvEventJSON, string(doc)},
	}
	env := make([]corev1.EnvVar, len(vars))
	for i, v := range vars {
		env[i] = corev1.EnvVar{Name: v.name, Value: v.value}
	}
	return env, nil
}

// memberSlicesSelector is the label selector of a sliced group's member
// slices, as of the ChatGroup the Job is built from; empty for a group
// that keeps its members in status.members.
func memberSlicesSelector(cg *imv1.ChatGroup) string {
	if cg.Status.MemberSlices == nil {
		return ""
	}
	return memberslice.Selector(cg.Name, cg.Status.MemberSlices.Generation)
}

// jobOutcome reads a Job's state from its terminal conditions.
func jobOutcome(job *batchv1.Job) imv1.JobOutcome {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return imv1.JobSucceeded
		case batchv1.JobFailed:
			return imv1.JobFailed
		}
	}
	return imv1.JobRunning
}
