package controllers

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

// The integration tests share one control plane. Each test works in its
// own namespace with its own manager, whose cache only sees that namespace,
// so tests run in parallel without seeing each other's objects.

const (
	timeout  = 30 * time.Second
	interval = 100 * time.Millisecond
)

var env *testsupport.Env

func TestMain(m *testing.M) { testsupport.RunMain(m, &env) }

// integration skips the test in -short mode and returns the direct
// (uncached) client of the shared control plane.
func integration(t *testing.T) client.Client {
	t.Helper()
	if env == nil {
		t.Skip("integration test: needs a control plane (run without -short)")
	}
	t.Parallel()
	return env.Client
}

// newNamespace creates a namespace for one test, whose default
// ServiceAccount (the one triggers act as by default) may create Jobs.
func newNamespace(t *testing.T, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cg-test-"}}
	NewWithT(t).Expect(c.Create(context.Background(), ns)).To(Succeed())
	allowJobs(t, c, ns.Name, "default")
	return ns.Name
}

// allowJobs lets a ServiceAccount create Jobs in its namespace.
func allowJobs(t *testing.T, c client.Client, ns, serviceAccount string) {
	t.Helper()
	NewWithT(t).Expect(testsupport.AllowJobs(context.Background(), c, ns, serviceAccount)).To(Succeed())
}

// startManager runs the controllers for one namespace until the test ends
// or the returned stop function is called.
func startManager(t *testing.T, namespace string) (stop func()) {
	t.Helper()
	return startManagerWith(t, namespace, Options{})
}

// startManagerWith is startManager with controller options.
func startManagerWith(t *testing.T, namespace string, opts Options) (stop func()) {
	t.Helper()
	g := NewWithT(t)
	// The production cache configuration, limited to the test's namespace.
	cacheOpts := CacheOptions()
	cacheOpts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:     env.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cacheOpts,
		Client:     ClientOptions(),
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	g.Expect(err).NotTo(HaveOccurred())
	// Secrets are not watched: the tests that change one see the change
	// at the next recheck.
	if opts.SecretRecheckInterval == 0 {
		opts.SecretRecheckInterval = time.Second
	}
	g.Expect(SetupWithManager(mgr, opts)).To(Succeed())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager stopped with an error: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// newGroup creates a ChatGroup the way a user (or the callback server)
// would, without status.
func newGroup(t *testing.T, c client.Client, ns, groupID string, labels map[string]string) *imv1.ChatGroup {
	t.Helper()
	spec := imv1.ChatGroupSpec{Provider: imv1.ProviderTencent, AppID: "1400000001", GroupID: groupID}
	cg := &imv1.ChatGroup{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      imv1.ChatGroupName(spec.Provider, spec.AppID, spec.GroupID),
			Labels:    labels,
		},
		Spec: spec,
	}
	NewWithT(t).Expect(c.Create(context.Background(), cg)).To(Succeed())
	return cg
}

// writeGroupStatus changes a group's status the way the callback server
// does: a merge patch with an optimistic lock, retried on conflicts.
func writeGroupStatus(t *testing.T, c client.Client, key types.NamespacedName, mutate func(*imv1.ChatGroupStatus)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cg := &imv1.ChatGroup{}
		if err := c.Get(context.Background(), key, cg); err != nil {
			return err
		}
		base := cg.DeepCopy()
		mutate(&cg.Status)
		return c.Status().Patch(context.Background(), cg, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
}

// entry builds a journal entry.
func entry(seq int64, kind imv1.EventKind, reason imv1.LeaveReason, operator string, members ...string) imv1.JournalEntry {
	return imv1.JournalEntry{
		Seq: seq, Kind: kind, Reason: reason, Operator: operator, Members: members,
		Time: metav1.NewMicroTime(time.Date(2026, 11, 22, 10, 0, int(seq), 123456000, time.UTC)),
		Key:  fmt.Sprintf("key-%d", seq),
	}
}

// appendJournal adds entries to a status as the callback server would.
func appendJournal(st *imv1.ChatGroupStatus, entries ...imv1.JournalEntry) {
	st.Journal = append(st.Journal, entries...)
	st.LastSeq = entries[len(entries)-1].Seq
	st.EventsApplied += int64(len(entries))
}

// newTrigger creates a ChatGroupTrigger selecting groups with the label
// selected=<name>.
func newTrigger(t *testing.T, c client.Client, ns, name string, ttl *metav1.Duration, on ...imv1.TriggerEvent) *imv1.ChatGroupTrigger {
	t.Helper()
	trig := jobTrigger(ns, name, ttl, on...)
	NewWithT(t).Expect(c.Create(context.Background(), trig)).To(Succeed())
	return trig
}

// jobTrigger is the trigger newTrigger creates.
func jobTrigger(ns, name string, ttl *metav1.Duration, on ...imv1.TriggerEvent) *imv1.ChatGroupTrigger {
	return &imv1.ChatGroupTrigger{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: imv1.ChatGroupTriggerSpec{
			On:              on,
			Selector:        metav1.LabelSelector{MatchLabels: map[string]string{"selected": name}},
			TTLAfterDisband: ttl,
			JobTemplate: &batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "chat"}},
				Spec: batchv1.JobSpec{
					BackoffLimit: ptr.To[int32](0),
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Containers: []corev1.Container{{
							Name: "work", Image: "busybox:1.36", Command: []string{"true"},
							Env: []corev1.EnvVar{{Name: "OWN", Value: "kept"}, {Name: EnvEvent, Value: "overridden"}},
						}},
					}},
				},
			},
		},
	}
}

// jobsOf lists the Jobs started for a group.
func jobsOf(g Gomega, c client.Client, cg *imv1.ChatGroup) []batchv1.Job {
	var jobs batchv1.JobList
	g.Expect(c.List(context.Background(), &jobs, client.InNamespace(cg.Namespace),
		client.MatchingLabels{imv1.GroupLabel: cg.Name})).To(Succeed())
	return jobs.Items
}

// getGroup reads a group from the API server.
func getGroup(g Gomega, c client.Client, key types.NamespacedName) *imv1.ChatGroup {
	cg := &imv1.ChatGroup{}
	g.Expect(c.Get(context.Background(), key, cg)).To(Succeed())
	return cg
}

// finishJob sets a Job's status as the Job controller would when it
// finishes. The API server insists on the interim condition
// (SuccessCriteriaMet or FailureTarget) before the final one, and on start
// and completion times.
func finishJob(t *testing.T, c client.Client, key types.NamespacedName, succeeded bool) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		job := &batchv1.Job{}
		if err := c.Get(context.Background(), key, job); err != nil {
			return err
		}
		now := metav1.Now()
		cond := func(typ batchv1.JobConditionType, reason string) batchv1.JobCondition {
			return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, LastProbeTime: now, LastTransitionTime: now}
		}
		job.Status.StartTime = &now
		if succeeded {
			job.Status.CompletionTime = &now
			job.Status.Succeeded = 1
			job.Status.Conditions = []batchv1.JobCondition{
				cond(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached),
				cond(batchv1.JobComplete, batchv1.JobReasonCompletionsReached),
			}
		} else {
			job.Status.Failed = 1
			job.Status.Conditions = []batchv1.JobCondition{
				cond(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded),
				cond(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded),
			}
		}
		return c.Status().Update(context.Background(), job)
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
}

// eventReasons lists the reasons of the events.k8s.io Events about an
// object.
func eventReasons(g Gomega, c client.Client, obj client.Object) []string {
	var list eventsv1.EventList
	g.Expect(c.List(context.Background(), &list, client.InNamespace(obj.GetNamespace()))).To(Succeed())
	var reasons []string
	for _, ev := range list.Items {
		if ev.Regarding.UID == obj.GetUID() {
			reasons = append(reasons, ev.Reason)
		}
	}
	return reasons
}

// isNotFound is a matcher-friendly NotFound check.
func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
