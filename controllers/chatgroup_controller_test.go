package controllers

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

func TestChatGroupReconciler_cleanupTrigger(t *testing.T) {
	c := integration(t)
	ns := newNamespace(t, c)
	stop := startManager(t, ns)
	parent := t // managers must outlive the subtest that starts them

	trig := newTrigger(t, c, ns, "cleanup", &metav1.Duration{Duration: time.Second}, imv1.TriggerDisbanded)
	rcv, secret := testsupport.Receiver{Namespace: ns, Name: "rcv", Provider: imv1.ProviderTencent, AppID: "1400000001",
		Token: "a-token-that-is-at-least-32-bytes-long"}.Objects()
	rcv.UID, rcv.Status = "", imv1.ChatReceiverStatus{}
	NewWithT(t).Expect(c.Create(context.Background(), secret)).To(Succeed())
	NewWithT(t).Expect(c.Create(context.Background(), rcv)).To(Succeed())
	cg := newGroup(t, c, ns, "@TGS#2C5SZEAEF", map[string]string{"selected": "cleanup", imv1.ReceiverLabel: "rcv"})
	key := client.ObjectKeyFromObject(cg)
	disbandedAt := metav1.NewMicroTime(time.Date(2026, 11, 22, 10, 0, 2, 0, time.UTC))
	writeGroupStatus(t, c, key, func(st *imv1.ChatGroupStatus) {
		appendJournal(st,
			entry(1, imv1.EventCreated, "", "alice", "alice", "bob"),
			entry(2, imv1.EventDisbanded, "", "alice"))
		st.Disbanded, st.DisbandedAt = true, &disbandedAt
	})

	var job batchv1.Job
	t.Run("creates exactly one Job for the disband entry", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func(g Gomega) {
			jobs := jobsOf(g, c, cg)
			g.Expect(jobs).To(HaveLen(1))
			job = jobs[0]
		}, timeout, interval).Should(Succeed())

		g.Expect(job.Name).To(Equal(jobName(getGroup(g, c, key), trig.Name, 2)))
		g.Expect(job.Labels).To(Equal(map[string]string{
			"team": "chat", imv1.GroupLabel: cg.Name, imv1.TriggerLabel: "cleanup", imv1.SeqLabel: "2",
		}))
		owner := metav1.GetControllerOf(&job)
		g.Expect(owner).NotTo(BeNil())
		g.Expect(owner.Kind).To(Equal("ChatGroup"))
		g.Expect(owner.Name).To(Equal(cg.Name))

		env := map[string]string{}
		for _, e := range job.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		g.Expect(env).To(HaveKeyWithValue(EnvName, cg.Name))
		g.Expect(env).To(HaveKeyWithValue(EnvNamespace, ns))
		g.Expect(env).To(HaveKeyWithValue(EnvProvider, "Tencent"))
		g.Expect(env).To(HaveKeyWithValue(EnvAppID, "1400000001"))
		g.Expect(env).To(HaveKeyWithValue(EnvGroupID, "@TGS#2C5SZEAEF"))
		g.Expect(env).To(HaveKeyWithValue(EnvTrigger, "cleanup"))
		g.Expect(env).To(HaveKeyWithValue(EnvEvent, "Disbanded"))
		g.Expect(env).To(HaveKeyWithValue(EnvReason, ""))
		g.Expect(env).To(HaveKeyWithValue(EnvSeq, "2"))
		g.Expect(env).To(HaveKeyWithValue(EnvOperator, "alice"))
		g.Expect(env).To(HaveKeyWithValue(EnvEventTime, "2026-11-22T10:00:02.123456Z"))
		g.Expect(env).To(HaveKeyWithValue("OWN", "kept"))
		var doc map[string]any
		g.Expect(json.Unmarshal([]byte(env[EnvEventJSON]), &doc)).To(Succeed())
		g.Expect(doc).To(HaveKeyWithValue("kind", "Disbanded"))
		g.Expect(doc).To(HaveKeyWithValue("groupID", "@TGS#2C5SZEAEF"))
		g.Expect(doc).To(HaveKeyWithValue("seq", BeNumerically("==", 2)))
	})

	t.Run("records the trigger's progress and waits for the Job", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func(g Gomega) {
			st := getGroup(g, c, key).Status
			g.Expect(st.Triggers).To(ConsistOf(imv1.TriggerStatus{
				Name: "cleanup", Cursor: 2, LastJob: job.Name, LastJobSeq: 2, LastJobOutcome: imv1.JobRunning,
			}))
			g.Expect(st.AnnouncedSeq).To(Equal(int64(2)))
			g.Expect(meta.FindStatusCondition(st.Conditions, imv1.CleanupSucceededCondition)).To(
				HaveField("Reason", imv1.JobRunningReason))
			g.Expect(meta.IsStatusConditionTrue(st.Conditions, imv1.DisbandedCondition)).To(BeTrue())
			g.Expect(meta.IsStatusConditionTrue(st.Conditions, imv1.ReadyCondition)).To(BeTrue())
		}, timeout, interval).Should(Succeed())
	})

	t.Run("publishes the journal as Events", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func(g Gomega) []string {
			return eventReasons(g, c, cg)
		}, timeout, interval).Should(ContainElements("Created", "Disbanded", jobCreatedReason))
	})

	t.Run("does not start the Job again after losing the cursor", func(t *testing.T) {
		g := NewWithT(t)
		stop()
		// A crash between creating the Job and recording the cursor
		// leaves the group without the trigger's progress.
		lost := client.RawPatch(types.MergePatchType, []byte(`{"status":{"triggers":null}}`))
		g.Expect(c.Status().Patch(context.Background(), getGroup(g, c, key), lost)).To(Succeed())
		g.Expect(getGroup(g, c, key).Status.Triggers).To(BeEmpty())

		startManager(parent, ns)
		g.Eventually(func(g Gomega) {
			st := getGroup(g, c, key).Status
			g.Expect(st.Triggers).To(ConsistOf(HaveField("Cursor", int64(2))))
		}, timeout, interval).Should(Succeed())
		g.Expect(jobsOf(g, c, cg)).To(HaveLen(1))
	})

	t.Run("reports the cleanup and deletes the group after the TTL", func(t *testing.T) {
		g := NewWithT(t)
		finishJob(t, c, client.ObjectKeyFromObject(&job), true)
		g.Eventually(func(g Gomega) {
			st := getGroup(g, c, key).Status
			cond := meta.FindStatusCondition(st.Conditions, imv1.CleanupSucceededCondition)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(cond.Reason).To(Equal(imv1.JobSucceededReason))
		}, timeout, interval).Should(Succeed())
		g.Eventually(func() bool {
			return isNotFound(c.Get(context.Background(), key, &imv1.ChatGroup{}))
		}, timeout, interval).Should(BeTrue())

		// M1: the receiver keeps the disband time, so that a late event
		// of this incarnation does not bring the group back.
		got := &imv1.ChatReceiver{}
		g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(rcv), got)).To(Succeed())
		g.Expect(got.Status.FenceFor(key.Name)).NotTo(BeNil())
		g.Expect(got.Status.FenceFor(key.Name).Time).To(BeTemporally("==", disbandedAt.Time))
	})
}

func TestChatGroupReconciler_leaveTriggers(t *testing.T) {
	c := integration(t)
	ns := newNamespace(t, c)
	startManager(t, ns)

	newTrigger(t, c, ns, "kicks", nil, imv1.TriggerMemberKicked)
	newTrigger(t, c, ns, "leaves", nil, imv1.TriggerMembersLeft)
	cg := newGroup(t, c, ns, "@TGS#LEAVES", map[string]string{"selected": "kicks"})
	key := client.ObjectKeyFromObject(cg)
	writeGroupStatus(t, c, key, func(st *imv1.ChatGroupStatus) {
		appendJournal(st,
			entry(1, imv1.EventCreated, "", "alice", "alice", "bob", "carol", "dave"),
			entry(2, imv1.EventMembersLeft, imv1.LeaveKicked, "alice", "bob"),
			entry(3, imv1.EventMembersLeft, imv1.LeaveQuit, "", "carol"),
			entry(4, imv1.EventMembersLeft, imv1.LeaveKicked, "alice", "dave"))
	})

	seqsOf := func(g Gomega, trigger string) []string {
		var seqs []string
		for _, job := range jobsOf(g, c, cg) {
			if job.Labels[imv1.TriggerLabel] == trigger {
				seqs = append(seqs, job.Labels[imv1.SeqLabel])
			}
		}
		sort.Strings(seqs)
		return seqs
	}

	t.Run("MemberKicked starts one Job per kick and none for a quit", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func(g Gomega) []string { return seqsOf(g, "kicks") }, timeout, interval).
			Should(Equal([]string{"2", "4"}))
		g.Eventually(func(g Gomega) {
			g.Expect(getGroup(g, c, key).Status.Triggers).To(ConsistOf(HaveField("Cursor", int64(4))))
		}, timeout, interval).Should(Succeed())
		g.Expect(seqsOf(g, "kicks")).To(Equal([]string{"2", "4"}))

		kicked := map[string]string{"2": "bob", "4": "dave"}
		for _, job := range jobsOf(g, c, cg) {
			env := job.Spec.Template.Spec.Containers[0].Env
			g.Expect(env).To(ContainElement(corev1.EnvVar{Name: EnvReason, Value: "Kicked"}))
			g.Expect(env).To(ContainElement(corev1.EnvVar{Name: EnvMembers, Value: kicked[job.Labels[imv1.SeqLabel]]}))
			g.Expect(env).To(ContainElement(corev1.EnvVar{Name: EnvOperator, Value: "alice"}))
		}
	})

	t.Run("MembersLeft starts a Job for every leave once the group matches", func(t *testing.T) {
		g := NewWithT(t)
		patch := client.MergeFrom(cg.DeepCopy())
		cg.Labels["selected"] = "leaves"
		g.Expect(c.Patch(context.Background(), cg, patch)).To(Succeed())

		g.Eventually(func(g Gomega) []string { return seqsOf(g, "leaves") }, timeout, interval).
			Should(Equal([]string{"2", "3", "4"}))
		// The kicks trigger no longer selects the group: its progress goes.
		g.Eventually(func(g Gomega) {
			g.Expect(getGroup(g, c, key).Status.Triggers).To(ConsistOf(HaveField("Name", "leaves")))
		}, timeout, interval).Should(Succeed())
	})

	t.Run("publishes kicks and leaves as distinct Events", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func(g Gomega) []string { return eventReasons(g, c, cg) }, timeout, interval).
			Should(ContainElements("Created", memberKickedReason, "MembersLeft"))
	})
}

func TestChatGroupReconciler_missedEntries(t *testing.T) {
	c := integration(t)
	ns := newNamespace(t, c)
	startManager(t, ns)

	newTrigger(t, c, ns, "joins", nil, imv1.TriggerMembersJoined)
	cg := newGroup(t, c, ns, "@TGS#MISSED", map[string]string{"selected": "joins"})
	key := client.ObjectKeyFromObject(cg)
	g := NewWithT(t)
	g.Eventually(func(g Gomega) {
		g.Expect(getGroup(g, c, key).Status.Triggers).To(ConsistOf(imv1.TriggerStatus{Name: "joins", Cursor: 0}))
	}, timeout, interval).Should(Succeed())

	// Six events arrive before the reconciler runs again; the ring kept
	// only the last two.
	writeGroupStatus(t, c, key, func(st *imv1.ChatGroupStatus) {
		appendJournal(st,
			entry(5, imv1.EventMembersJoined, "", "", "erin"),
			entry(6, imv1.EventMembersJoined, "", "", "frank"))
	})

	g.Eventually(func(g Gomega) {
		st := getGroup(g, c, key).Status
		g.Expect(st.Triggers).To(ConsistOf(HaveField("Missed", int64(4))))
		g.Expect(st.Triggers).To(ConsistOf(HaveField("Cursor", int64(6))))
		g.Expect(meta.IsStatusConditionTrue(st.Conditions, imv1.EventsMissedCondition)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
	g.Expect(jobsOf(g, c, cg)).To(HaveLen(2))
	g.Eventually(func(g Gomega) []string { return eventReasons(g, c, cg) }, timeout, interval).
		Should(ContainElements(entriesMissedReason, notAnnouncedReason))
}

func TestChatGroupReconciler_failedJob(t *testing.T) {
	c := integration(t)
	ns := newNamespace(t, c)
	startManager(t, ns)

	newTrigger(t, c, ns, "cleanup", nil, imv1.TriggerDisbanded)
	cg := newGroup(t, c, ns, "@TGS#FAILS", map[string]string{"selected": "cleanup"})
	key := client.ObjectKeyFromObject(cg)
	writeGroupStatus(t, c, key, func(st *imv1.ChatGroupStatus) {
		appendJournal(st, entry(1, imv1.EventDisbanded, "", "alice"))
		st.Disbanded = true
	})

	g := NewWithT(t)
	var jobs []batchv1.Job
	g.Eventually(func(g Gomega) {
		jobs = jobsOf(g, c, cg)
		g.Expect(jobs).To(HaveLen(1))
	}, timeout, interval).Should(Succeed())
	finishJob(t, c, client.ObjectKeyFromObject(&jobs[0]), false)

	g.Eventually(func(g Gomega) {
		st := getGroup(g, c, key).Status
		g.Expect(meta.FindStatusCondition(st.Conditions, imv1.CleanupSucceededCondition)).To(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", imv1.JobFailedReason)))
		g.Expect(meta.FindStatusCondition(st.Conditions, imv1.ReadyCondition)).To(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", imv1.JobFailedReason)))
		g.Expect(st.Triggers).To(ConsistOf(HaveField("LastJobOutcome", imv1.JobFailed)))
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) []string { return eventReasons(g, c, cg) }, timeout, interval).
		Should(ContainElement(jobFailedReason))
	g.Consistently(func(g Gomega) []batchv1.Job { return jobsOf(g, c, cg) }, time.Second, interval).Should(HaveLen(1))
}

func TestGroupChanged(t *testing.T) {
	now := metav1.Now()
	base := &imv1.ChatGroup{
		ObjectMeta: metav1.ObjectMeta{Generation: 1, ResourceVersion: "10", Labels: map[string]string{"a": "b"}},
		Status: imv1.ChatGroupStatus{
			MemberCount: 2, LastSeq: 3, AnnouncedSeq: 2,
			Journal:    []imv1.JournalEntry{{Seq: 3, Kind: imv1.EventMembersJoined}},
			Conditions: []metav1.Condition{{Type: imv1.ReadyCondition, Status: metav1.ConditionTrue}},
			Triggers:   []imv1.TriggerStatus{{Name: "t", Cursor: 2}},
		},
	}
	tests := []struct {
		name   string
		mutate func(*imv1.ChatGroup)
		want   bool
	}{
		{name: "ignores a new resourceVersion alone", mutate: func(cg *imv1.ChatGroup) { cg.ResourceVersion = "11" }, want: false},
		{name: "ignores new conditions", mutate: func(cg *imv1.ChatGroup) { cg.Status.Conditions[0].Status = metav1.ConditionFalse }, want: false},
		{name: "ignores observedGeneration", mutate: func(cg *imv1.ChatGroup) { cg.Status.ObservedGeneration = 1 }, want: false},
		{name: "ignores announcedSeq", mutate: func(cg *imv1.ChatGroup) { cg.Status.AnnouncedSeq = 3 }, want: false},
		{name: "ignores trigger progress", mutate: func(cg *imv1.ChatGroup) { cg.Status.Triggers[0].Cursor = 3 }, want: false},
		{name: "wakes on a new journal entry", mutate: func(cg *imv1.ChatGroup) {
			cg.Status.LastSeq = 4
			cg.Status.Journal = append(cg.Status.Journal, imv1.JournalEntry{Seq: 4})
		}, want: true},
		{name: "wakes on a member change", mutate: func(cg *imv1.ChatGroup) { cg.Status.MemberCount = 3 }, want: true},
		{name: "wakes on a disband", mutate: func(cg *imv1.ChatGroup) { cg.Status.Disbanded = true }, want: true},
		{name: "wakes on a label change", mutate: func(cg *imv1.ChatGroup) { cg.Labels["a"] = "c" }, want: true},
		{name: "wakes on an annotation", mutate: func(cg *imv1.ChatGroup) { cg.Annotations = map[string]string{"x": "y"} }, want: true},
		{name: "wakes on deletion", mutate: func(cg *imv1.ChatGroup) { cg.DeletionTimestamp = &now }, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			newCG := base.DeepCopy()
			tt.mutate(newCG)
			g.Expect(groupChanged(base, newCG)).To(Equal(tt.want))
			g.Expect(groupChangedPredicate().Update(event.UpdateEvent{ObjectOld: base, ObjectNew: newCG})).To(Equal(tt.want))
		})
	}
	t.Run("does not modify the objects it compares", func(t *testing.T) {
		g := NewWithT(t)
		newCG := base.DeepCopy()
		groupChanged(base, newCG)
		g.Expect(newCG).To(Equal(base))
	})
}

func TestJobFinishedPredicate(t *testing.T) {
	g := NewWithT(t)
	running := &batchv1.Job{}
	done := &batchv1.Job{Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue},
	}}}
	stillRunning := running.DeepCopy()
	stillRunning.Status.Active = 1
	p := jobFinishedPredicate()
	g.Expect(p.Update(event.UpdateEvent{ObjectOld: running, ObjectNew: done})).To(BeTrue())
	g.Expect(p.Update(event.UpdateEvent{ObjectOld: running, ObjectNew: stillRunning})).To(BeFalse())
	g.Expect(p.Create(event.CreateEvent{Object: running})).To(BeFalse())
	g.Expect(p.Delete(event.DeleteEvent{Object: done})).To(BeTrue())
}
