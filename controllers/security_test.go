package controllers

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// The tests in this file are named after the findings of the security
// audit they close.

// disbandedGroup creates a group selected by the trigger name with a
// Disbanded journal entry at seq 2.
func disbandedGroup(t *testing.T, c client.Client, ns, groupID, selected string) *imv1.ChatGroup {
	t.Helper()
	cg := newGroup(t, c, ns, groupID, map[string]string{"selected": selected})
	writeGroupStatus(t, c, client.ObjectKeyFromObject(cg), func(st *imv1.ChatGroupStatus) {
		appendJournal(st, entry(1, imv1.EventCreated, "", "alice", "alice"), entry(2, imv1.EventDisbanded, "", "alice"))
		st.Disbanded = true
	})
	return cg
}

// TestTrigger_M7_jobsAreCreatedAsTheTriggersServiceAccount: the operator
// (here with cluster-admin rights) creates a trigger's Job only if the
// trigger's ServiceAccount may, and the Pod runs as that ServiceAccount
// without its token.
func TestTrigger_M7_jobsAreCreatedAsTheTriggersServiceAccount(t *testing.T) {
	c := integration(t)
	ns := newNamespace(t, c)
	allowJobs(t, c, ns, "cleaner")
	startManager(t, ns)

	allowed := jobTrigger(ns, "allowed", nil, imv1.TriggerDisbanded)
	allowed.Spec.ServiceAccountName = "cleaner"
	NewWithT(t).Expect(c.Create(t.Context(), allowed)).To(Succeed())
	cg := disbandedGroup(t, c, ns, "@TGS#M7OK", "allowed")

	t.Run("runs the Pod as the trigger's ServiceAccount, without its token", func(t *testing.T) {
		g := NewWithT(t)
		var jobs []batchv1.Job
		g.Eventually(func(g Gomega) {
			jobs = jobsOf(g, c, cg)
			g.Expect(jobs).To(HaveLen(1))
		}, timeout, interval).Should(Succeed())
		pod := jobs[0].Spec.Template.Spec
		g.Expect(pod.ServiceAccountName).To(Equal("cleaner"))
		g.Expect(pod.AutomountServiceAccountToken).To(Equal(ptr.To(false)))
	})

	t.Run("creates no Job when the ServiceAccount may not, and says why", func(t *testing.T) {
		g := NewWithT(t)
		denied := jobTrigger(ns, "denied", nil, imv1.TriggerDisbanded)
		denied.Spec.ServiceAccountName = "no-rights"
		g.Expect(c.Create(t.Context(), denied)).To(Succeed())
		other := disbandedGroup(t, c, ns, "@TGS#M7DENIED", "denied")
		g.Eventually(func(g Gomega) {
			ready := meta.FindStatusCondition(getGroup(g, c, client.ObjectKeyFromObject(other)).Status.Conditions, imv1.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(imv1.JobForbiddenReason))
			g.Expect(ready.Message).To(ContainSubstring("ServiceAccount no-rights may not create the Job for seq 2"))
		}, timeout, interval).Should(Succeed())
		g.Expect(jobsOf(g, c, other)).To(BeEmpty())
		g.Eventually(func(g Gomega) []string { return eventReasons(g, c, other) }, timeout, interval).
			Should(ContainElement(imv1.JobForbiddenReason))
	})
}

// TestTrigger_M7_templateCannotChooseItsIdentity: a template may not name a
// ServiceAccount other than spec.serviceAccountName, and a Job's Pod does
// not get an API token unless the template asks for one.
func TestTrigger_M7_templateCannotChooseItsIdentity(t *testing.T) {
	g := NewWithT(t)
	spec := imv1.ChatGroupTriggerSpec{
		On:                 []imv1.TriggerEvent{imv1.TriggerDisbanded},
		ServiceAccountName: "cleaner",
		JobTemplate: &batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy:      corev1.RestartPolicyNever,
			ServiceAccountName: "namespace-admin",
			Containers:         []corev1.Container{{Name: "c", Image: "busybox:1.36"}},
		}}}},
	}
	g.Expect(validateTrigger(&spec)).To(MatchError(ContainSubstring(`jobTemplate names ServiceAccount "namespace-admin"`)))
	spec.JobTemplate.Spec.Template.Spec.ServiceAccountName = ""
	spec.JobTemplate.Spec.Template.Spec.DeprecatedServiceAccount = "namespace-admin"
	g.Expect(validateTrigger(&spec)).To(HaveOccurred())
	spec.JobTemplate.Spec.Template.Spec.DeprecatedServiceAccount = "cleaner"
	g.Expect(validateTrigger(&spec)).To(Succeed())

	// Without serviceAccountName the trigger acts as "default".
	spec.ServiceAccountName = ""
	spec.JobTemplate.Spec.Template.Spec.DeprecatedServiceAccount = ""
	g.Expect(validateTrigger(&spec)).To(Succeed())
	trig := &imv1.ChatGroupTrigger{ObjectMeta: metav1.ObjectMeta{Name: "t"}, Spec: spec}
	cg := &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "g"}}
	job, err := buildJob(cg, trig, &imv1.JournalEntry{Seq: 1, Kind: imv1.EventDisbanded})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(job.Spec.Template.Spec.ServiceAccountName).To(Equal("default"))
	g.Expect(job.Spec.Template.Spec.AutomountServiceAccountToken).To(Equal(ptr.To(false)))

	// A template that asks for the token gets it.
	trig.Spec.JobTemplate.Spec.Template.Spec.AutomountServiceAccountToken = ptr.To(true)
	job, err = buildJob(cg, trig, &imv1.JournalEntry{Seq: 1, Kind: imv1.EventDisbanded})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(job.Spec.Template.Spec.AutomountServiceAccountToken).To(Equal(ptr.To(true)))
}

// TestJobEnv_M6_membersAreUnambiguous: CHATGROUP_MEMBERS has one ID per
// line, so an ID with a comma is one member, not two.
func TestJobEnv_M6_membersAreUnambiguous(t *testing.T) {
	g := NewWithT(t)
	cg := &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "g"}}
	env, err := jobEnv(cg, "t", &imv1.JournalEntry{Seq: 1, Kind: imv1.EventMembersLeft, Members: []string{"eve,admin", "x$(id)"}})
	g.Expect(err).NotTo(HaveOccurred())
	values := map[string]string{}
	for _, e := range env {
		values[e.Name] = e.Value
	}
	g.Expect(strings.Split(values[EnvMembers], "\n")).To(Equal([]string{"eve,admin", "x$(id)"}))
}

// TestTrigger_L6_plantedJobIsNotAdopted: a Job with the predictable name
// and labels, but not controlled by the group, does not count as the
// cleanup: the group says so and is not cleaned up.
func TestTrigger_L6_plantedJobIsNotAdopted(t *testing.T) {
	c := integration(t)
	g := NewWithT(t)
	ns := newNamespace(t, c)
	newTrigger(t, c, ns, "cleanup", &metav1.Duration{Duration: time.Second}, imv1.TriggerDisbanded)
	cg := disbandedGroup(t, c, ns, "@TGS#L6", "cleanup")
	key := client.ObjectKeyFromObject(cg)
	cg = getGroup(g, c, key)

	planted := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: jobName(cg, "cleanup", 2), Labels: jobLabels(cg, "cleanup", 2)},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "noop", Image: "busybox:1.36"}},
		}}},
	}
	g.Expect(c.Create(t.Context(), planted)).To(Succeed())
	finishJob(t, c, client.ObjectKeyFromObject(planted), true)
	startManager(t, ns)

	g.Eventually(func(g Gomega) {
		st := getGroup(g, c, key).Status
		ready := meta.FindStatusCondition(st.Conditions, imv1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(imv1.InvalidSpecReason))
		g.Expect(ready.Message).To(ContainSubstring("exists but this ChatGroup does not control it"))
		g.Expect(meta.IsStatusConditionTrue(st.Conditions, imv1.CleanupSucceededCondition)).To(BeFalse())
	}, timeout, interval).Should(Succeed())
	g.Expect(c.Get(t.Context(), key, &imv1.ChatGroup{})).To(Succeed(), "not deleted by the TTL")
}

// TestSetReceiverStatus_L4_halfBasicAuthIsNotReady: a Secret with only a
// username or only a password makes the receiver not Ready, and publishes
// no path, instead of silently turning basic auth off.
func TestSetReceiverStatus_L4_halfBasicAuthIsNotReady(t *testing.T) {
	g := NewWithT(t)
	rcv := &imv1.ChatReceiver{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "rcv"},
		Spec: imv1.ChatReceiverSpec{SecretRef: imv1.SecretReference{Name: "s"}}}
	setReceiverStatus(rcv, receiverObservation{token: "t1", halfBasicAuth: true})
	ready := meta.FindStatusCondition(rcv.Status.Conditions, imv1.ReadyCondition)
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(ready.Reason).To(Equal(imv1.IncompleteBasicAuthReason))
	g.Expect(rcv.Status.WebhookPath).To(BeEmpty())
}
