package resync_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider"
	"chatgroup.dev/chatgroup-operator/internal/provider/providertest"
	"chatgroup.dev/chatgroup-operator/internal/resync"
	"chatgroup.dev/chatgroup-operator/internal/resync/resynctest"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

const (
	timeout  = 60 * time.Second
	interval = 50 * time.Millisecond
)

// operator is the operator running for one test namespace: the callback
// server, the reconcilers and the resync loop, in one manager.
type operator struct {
	t   *testing.T
	c   client.Client
	ns  string
	url string
	// attempts is how often each REST call is tried.
	attempts int
}

// startOperator runs the operator for a new namespace until the test ends.
func startOperator(t *testing.T) *operator {
	t.Helper()
	if env == nil {
		t.Skip("integration test: needs a control plane (run without -short)")
	}
	g := NewWithT(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "resync-"}}
	g.Expect(env.Client.Create(context.Background(), ns)).To(Succeed())
	// Cleanup Jobs are created as the trigger's ServiceAccount, default.
	g.Expect(testsupport.AllowJobs(context.Background(), env.Client, ns.Name, "default")).To(Succeed())
	op := &operator{t: t, c: env.Client, ns: ns.Name, attempts: 3}

	retry := provider.Retry{Attempts: op.attempts, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	op.url = resynctest.StartOperator(t, env, ns.Name, resync.Options{Tick: 100 * time.Millisecond, MinBackoff: time.Hour,
		NewClient: resynctest.ClientFactory(retry, 2*time.Second)})
	return op
}

// receiver creates a ChatReceiver with resync against endpoint (interval
// one hour: passes run on request) and waits until it is Ready.
func (op *operator) receiver(name string, p imv1.Provider, appID, endpoint, admin, key string, discover bool) providertest.Endpoint {
	op.t.Helper()
	g := NewWithT(op.t)
	ctx := context.Background()
	g.Expect(op.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: op.ns, Name: name},
		StringData: map[string]string{imv1.TokenKey: "resync-test-token-0123456789abcdef", imv1.ResyncKeyKey: key}})).To(Succeed())
	g.Expect(op.c.Create(ctx, &imv1.ChatReceiver{
		ObjectMeta: metav1.ObjectMeta{Namespace: op.ns, Name: name},
		Spec: imv1.ChatReceiverSpec{Provider: p, AppID: appID, SecretRef: imv1.SecretReference{Name: name},
			GroupLabels: map[string]imv1.LabelValue{"team": "chat"},
			Resync: &imv1.ResyncSpec{Endpoint: endpoint, Admin: admin, SecretRef: imv1.SecretReference{Name: name},
				Interval: &metav1.Duration{Duration: time.Hour}, Discover: discover}},
	})).To(Succeed())
	var ep providertest.Endpoint
	g.Eventually(func() error {
		var err error
		ep, err = providertest.ForReceiver(ctx, op.c, types.NamespacedName{Namespace: op.ns, Name: name})
		return err
	}, timeout, interval).Should(Succeed())
	// The first pass runs as soon as the receiver exists; wait for it so
	// that later passes are the ones a test requests.
	op.waitPass(name, "")
	return ep
}

// send delivers a callback and expects it to be accepted.
func (op *operator) send(ep providertest.Endpoint, a callbacks.Action, p callbacks.Params) {
	op.t.Helper()
	cbs, err := ep.Sender.Build(a, p)
	if err != nil {
		op.t.Fatal(err)
	}
	for _, cb := range cbs {
		req, err := ep.Sender.Request(context.Background(), op.url, ep.Path, cb)
		if err != nil {
			op.t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			op.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || ep.Sender.CheckReply(body) != nil {
			op.t.Fatalf("%s callback: HTTP %d %s", a, resp.StatusCode, body)
		}
	}
}

// requestPass annotates the receiver and waits for the pass to finish.
func (op *operator) requestPass(name, value string) *imv1.ChatReceiver {
	op.t.Helper()
	rcv := &imv1.ChatReceiver{ObjectMeta: metav1.ObjectMeta{Namespace: op.ns, Name: name}}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, imv1.ResyncRequestedAnnotation, value)
	NewWithT(op.t).Expect(op.c.Patch(context.Background(), rcv, client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
	return op.waitPass(name, value)
}

// waitPass waits until the receiver's lastSync records the request value.
func (op *operator) waitPass(name, value string) *imv1.ChatReceiver {
	op.t.Helper()
	var rcv *imv1.ChatReceiver
	NewWithT(op.t).Eventually(func() bool {
		rcv = &imv1.ChatReceiver{} // a fresh object: decoding skips omitted fields
		if err := op.c.Get(context.Background(), types.NamespacedName{Namespace: op.ns, Name: name}, rcv); err != nil {
			return false
		}
		return rcv.Status.LastSync != nil && rcv.Status.LastSync.Requested == value
	}, timeout, interval).Should(BeTrue(), "resync pass %q on %s", value, name)
	return rcv
}

// group reads a ChatGroup.
func (op *operator) group(p imv1.Provider, appID, groupID string) *imv1.ChatGroup {
	op.t.Helper()
	cg := &imv1.ChatGroup{}
	key := types.NamespacedName{Namespace: op.ns, Name: imv1.ChatGroupName(p, appID, groupID)}
	NewWithT(op.t).Expect(op.c.Get(context.Background(), key, cg)).To(Succeed())
	return cg
}

// memberIDs lists a status's members.
func memberIDs(st *imv1.ChatGroupStatus) []string {
	ids := make([]string, len(st.Members))
	for i, m := range st.Members {
		ids[i] = m.UserID
	}
	slices.Sort(ids)
	return ids
}

// cleanupTrigger creates a trigger that runs a Job on Disbanded for the
// receivers' groups (label team=chat).
func (op *operator) cleanupTrigger() {
	op.t.Helper()
	trig := &imv1.ChatGroupTrigger{
		ObjectMeta: metav1.ObjectMeta{Namespace: op.ns, Name: "cleanup"},
		Spec: imv1.ChatGroupTriggerSpec{
			On:       []imv1.TriggerEvent{imv1.TriggerDisbanded},
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"team": "chat"}},
			JobTemplate: &batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				BackoffLimit: ptr.To[int32](0),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "cleanup", Image: "busybox:1.36", Command: []string{"true"}}},
				}},
			}},
		},
	}
	NewWithT(op.t).Expect(op.c.Create(context.Background(), trig)).To(Succeed())
}

// cleanupJobs lists the Jobs started for a ChatGroup.
func (op *operator) cleanupJobs(cg *imv1.ChatGroup) []batchv1.Job {
	var jobs batchv1.JobList
	NewWithT(op.t).Expect(op.c.List(context.Background(), &jobs, client.InNamespace(op.ns),
		client.MatchingLabels{imv1.GroupLabel: cg.Name})).To(Succeed())
	return jobs.Items
}
