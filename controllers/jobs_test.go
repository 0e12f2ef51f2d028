package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

func testGroup() *imv1.ChatGroup {
	return &imv1.ChatGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tencent-tgs-abc-0123456789", UID: "uid-1"},
		Spec:       imv1.ChatGroupSpec{Provider: imv1.ProviderTencent, AppID: "1400000001", GroupID: "@TGS#abc"},
	}
}

func TestJobName(t *testing.T) {
	cg := testGroup()
	tests := []struct {
		name    string
		trigger string
		prefix  string
	}{
		{name: "keeps a short trigger name", trigger: "cleanup", prefix: "cleanup-"},
		{name: "replaces dots", trigger: "cleanup.v2", prefix: "cleanup-v2-"},
		{name: "truncates a long trigger name", trigger: strings.Repeat("a", 253), prefix: strings.Repeat("a", 35) + "-"},
		{name: "does not end the prefix with a dash", trigger: strings.Repeat("a", 34) + ".b", prefix: strings.Repeat("a", 34) + "-"},
		{name: "falls back for a name without alphanumerics", trigger: "...", prefix: "trigger-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			name := jobName(cg, tt.trigger, 7)
			g.Expect(name).To(HavePrefix(tt.prefix))
			g.Expect(len(name)).To(BeNumerically("<=", maxJobNameLength))
			g.Expect(validation.IsDNS1123Label(name)).To(BeEmpty())
			g.Expect(jobName(cg, tt.trigger, 7)).To(Equal(name), "deterministic")
		})
	}

	t.Run("differs by seq, trigger and group incarnation", func(t *testing.T) {
		g := NewWithT(t)
		name := jobName(cg, "cleanup", 1)
		g.Expect(jobName(cg, "cleanup", 2)).NotTo(Equal(name))
		g.Expect(jobName(cg, "cleanup2", 1)).NotTo(Equal(name))
		other := cg.DeepCopy()
		other.UID = "uid-2"
		g.Expect(jobName(other, "cleanup", 1)).NotTo(Equal(name))
	})
}

func TestLabelValue(t *testing.T) {
	g := NewWithT(t)
	g.Expect(labelValue("short")).To(Equal("short"))
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 100)
	v := labelValue(long)
	g.Expect(validation.IsValidLabelValue(v)).To(BeEmpty())
	g.Expect(v).NotTo(Equal(labelValue(long + "c")))
}

func TestBuildJob(t *testing.T) {
	g := NewWithT(t)
	cg := testGroup()
	trig := &imv1.ChatGroupTrigger{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "kicks"},
		Spec: imv1.ChatGroupTriggerSpec{
			On: []imv1.TriggerEvent{imv1.TriggerMemberKicked},
			JobTemplate: &batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      map[string]string{"team": "chat", imv1.SeqLabel: "spoofed"},
					Annotations: map[string]string{"note": "x"},
				},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy:  corev1.RestartPolicyNever,
					InitContainers: []corev1.Container{{Name: "init"}},
					Containers: []corev1.Container{{Name: "main", Env: []corev1.EnvVar{
						{Name: "OWN", Value: "$(CHATGROUP_GROUP_ID)"}, {Name: EnvSeq, Value: "99"},
					}}},
				}}},
			},
		},
	}
	e := imv1.JournalEntry{
		Seq: 4, Kind: imv1.EventMembersLeft, Reason: imv1.LeaveKicked, Operator: "alice",
		Members: []string{"bob", "carol"}, MembersOmitted: 2, Message: "spam",
		Time: metav1.NewMicroTime(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)), Key: "k",
	}

	job, err := buildJob(cg, trig, &e)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(job.Name).To(Equal(jobName(cg, "kicks", 4)))
	g.Expect(job.Namespace).To(Equal("team-a"))
	wantLabels := map[string]string{"team": "chat", imv1.GroupLabel: cg.Name, imv1.TriggerLabel: "kicks", imv1.SeqLabel: "4"}
	g.Expect(job.Labels).To(Equal(wantLabels))
	g.Expect(job.Annotations).To(Equal(map[string]string{"note": "x"}))
	g.Expect(job.Spec.Template.Labels).To(Equal(map[string]string{imv1.GroupLabel: cg.Name, imv1.TriggerLabel: "kicks", imv1.SeqLabel: "4"}))
	g.Expect(isJobFor(job, cg, "kicks", 4)).To(BeFalse(), "not controlled by the group yet")
	g.Expect(controllerutil.SetControllerReference(cg, job, testsupport.Scheme())).To(Succeed())
	g.Expect(isJobFor(job, cg, "kicks", 4)).To(BeTrue())
	g.Expect(isJobFor(job, cg, "kicks", 5)).To(BeFalse())
	g.Expect(trig.Spec.JobTemplate.Labels[imv1.SeqLabel]).To(Equal("spoofed"), "the template is not modified")

	env := job.Spec.Template.Spec.Containers[0].Env
	names := make([]string, len(env))
	values := map[string]string{}
	for i, v := range env {
		names[i] = v.Name
		values[v.Name] = v.Value
	}
	g.Expect(names).To(Equal([]string{
		EnvName, EnvNamespace, EnvProvider, EnvAppID, EnvGroupID, EnvTrigger, EnvEvent, EnvReason, EnvSeq,
		EnvMembers, EnvMembersOmitted, EnvMemberSlices, EnvOperator, EnvEventTime, EnvEventJSON, "OWN",
	}), "ours first, the template's duplicate dropped, its own variables kept")
	g.Expect(values).To(HaveKeyWithValue(EnvSeq, "4"))
	g.Expect(values).To(HaveKeyWithValue(EnvEvent, "MembersLeft"))
	g.Expect(values).To(HaveKeyWithValue(EnvReason, "Kicked"))
	g.Expect(values).To(HaveKeyWithValue(EnvMembers, "bob\ncarol"))
	g.Expect(values).To(HaveKeyWithValue(EnvMembersOmitted, "2"))
	g.Expect(values).To(HaveKeyWithValue(EnvEventTime, "2026-01-02T03:04:05.000006Z"))
	g.Expect(values[EnvEventJSON]).To(MatchJSON(`{
		"namespace": "team-a", "name": "tencent-tgs-abc-0123456789", "provider": "Tencent",
		"appID": "1400000001", "groupID": "@TGS#abc", "trigger": "kicks", "seq": 4,
		"kind": "MembersLeft", "reason": "Kicked", "members": ["bob", "carol"], "membersOmitted": 2,
		"operator": "alice", "message": "spam", "time": "2026-01-02T03:04:05.000006Z", "key": "k"}`))
	g.Expect(job.Spec.Template.Spec.InitContainers[0].Env).To(HaveLen(15))
}

func TestJobOutcome(t *testing.T) {
	cond := func(typ batchv1.JobConditionType, status corev1.ConditionStatus) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: status}
	}
	tests := []struct {
		name  string
		conds []batchv1.JobCondition
		want  imv1.JobOutcome
	}{
		{name: "runs without conditions", want: imv1.JobRunning},
		{name: "still runs when only success criteria are met", conds: []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue)}, want: imv1.JobRunning},
		{name: "succeeds when complete", conds: []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue), cond(batchv1.JobComplete, corev1.ConditionTrue)}, want: imv1.JobSucceeded},
		{name: "fails when failed", conds: []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue), cond(batchv1.JobFailed, corev1.ConditionTrue)}, want: imv1.JobFailed},
		{name: "ignores false conditions", conds: []batchv1.JobCondition{cond(batchv1.JobFailed, corev1.ConditionFalse)}, want: imv1.JobRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := &batchv1.Job{Status: batchv1.JobStatus{Conditions: tt.conds}}
			NewWithT(t).Expect(jobOutcome(job)).To(Equal(tt.want))
		})
	}
}

// A Job for a sliced 100,000-member group gets the event's own members
// (bounded by the journal) and the selector of the group's member slices,
// never the member list: its env stays far below the Pod size limits.
func TestBuildJob_slicedGroupGetsSliceSelector(t *testing.T) {
	g := NewWithT(t)
	cg := testGroup()
	cg.Status.MemberCount = 100000
	cg.Status.MemberSlices = &imv1.MemberSlicesStatus{Generation: 7, Slices: 1563, Seq: 3, Listed: 100000}
	trig := &imv1.ChatGroupTrigger{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "created"},
		Spec: imv1.ChatGroupTriggerSpec{On: []imv1.TriggerEvent{imv1.TriggerCreated},
			JobTemplate: &batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "main"}}}}}}},
	}
	e := imv1.JournalEntry{Seq: 3, Kind: imv1.EventCreated, MembersOmitted: 100000 - 256,
		Time: metav1.NewMicroTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), Key: "k"}
	for i := range 256 {
		e.Members = append(e.Members, fmt.Sprintf("user-%0250d", i)) // the longest IDs allowed
	}

	job, err := buildJob(cg, trig, &e)
	g.Expect(err).NotTo(HaveOccurred())
	size := 0
	values := map[string]string{}
	for _, v := range job.Spec.Template.Spec.Containers[0].Env {
		size += len(v.Name) + len(v.Value)
		values[v.Name] = v.Value
	}
	selector := imv1.GroupLabel + "=" + cg.Name + "," + imv1.SliceGenerationLabel + "=7"
	g.Expect(values).To(HaveKeyWithValue(EnvMemberSlices, selector))
	g.Expect(values).To(HaveKeyWithValue(EnvMembersOmitted, "99744"))
	g.Expect(values[EnvEventJSON]).To(ContainSubstring(`"memberSlices":"` + selector + `"`))
	g.Expect(size).To(BeNumerically("<", 256<<10), "the env carries at most the journal's 256 members, twice")
}
