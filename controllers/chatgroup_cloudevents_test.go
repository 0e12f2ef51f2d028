package controllers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v64/github"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/cloudevent"
	"chatgroup.dev/chatgroup-operator/internal/cloudevent/cloudeventtest"
)

// ceToken is the signing token of the tests' Secrets.
var ceToken = []byte("a token of thirty-two bytes.....")

// fastCloudEvents retries quickly, so that the tests need not wait for the
// production backoffs.
func fastCloudEvents() Options {
	return Options{CloudEvents: cloudevent.Options{
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		AttemptTimeout: 2 * time.Second, MaxAttempts: 2,
	}}
}

// ceTrigger creates a trigger with only a cloudEvent action, selecting the
// groups labelled <name>=yes.
func ceTrigger(t *testing.T, c client.Client, ns, name string, ce *imv1.CloudEventAction, on ...imv1.TriggerEvent) *imv1.ChatGroupTrigger {
	t.Helper()
	trig := &imv1.ChatGroupTrigger{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: imv1.ChatGroupTriggerSpec{
			On:         on,
			Selector:   metav1.LabelSelector{MatchLabels: map[string]string{name: "yes"}},
			CloudEvent: ce,
		},
	}
	NewWithT(t).Expect(c.Create(context.Background(), trig)).To(Succeed())
	return trig
}

// tokenSecret creates the Secret a cloudEvent secretRef names.
func tokenSecret(t *testing.T, c client.Client, ns, name string) *corev1.LocalObjectReference {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{TokenKey: ceToken}}
	NewWithT(t).Expect(c.Create(context.Background(), s)).To(Succeed())
	return &corev1.LocalObjectReference{Name: name}
}

// triggerStatus reads a trigger's status entry on a group.
func triggerStatus(g Gomega, c client.Client, key types.NamespacedName, trigger string) imv1.TriggerStatus {
	ts := findTriggerStatus(&getGroup(g, c, key).Status, trigger)
	g.Expect(ts).NotTo(BeNil(), "status.triggers has %s", trigger)
	return *ts
}

func TestCloudEvent_attributesAndSignature(t *testing.T) {
	c := integration(t)
	g := NewWithT(t)
	ns := newNamespace(t, c)
	url, got := cloudeventtest.Sink(t)
	startManagerWith(t, ns, fastCloudEvents())

	ceTrigger(t, c, ns, "flux", &imv1.CloudEventAction{URL: url, SecretRef: tokenSecret(t, c, ns, "flux-token")},
		imv1.TriggerMembersJoined, imv1.TriggerDisbanded)
	cg := newGroup(t, c, ns, "@TGS#ce", map[string]string{"flux": "yes"})
	key := client.ObjectKeyFromObject(cg)
	writeGroupStatus(t, c, key, func(st *imv1.ChatGroupStatus) {
		appendJournal(st, entry(1, imv1.EventCreated, "", "alice"),
			entry(2, imv1.EventMembersJoined, "", "alice", "bob"), entry(3, imv1.EventDisbanded, "", "alice"))
	})

	// Journal order: seq 2, then seq 3; Created is not listed in on.
	for _, want := range []imv1.JournalEntry{entry(2, imv1.EventMembersJoined, "", "alice", "bob"), entry(3, imv1.EventDisbanded, "", "alice")} {
		var r cloudeventtest.Received
		g.Eventually(got, timeout).Should(Receive(&r))
		ev := r.Event
		g.Expect(ev.SpecVersion()).To(Equal("1.0"))
		g.Expect(ev.ID()).To(Equal(string(cg.UID) + "-" + strconv.FormatInt(want.Seq, 10)))
		g.Expect(ev.Type()).To(Equal("dev.chatgroup.v1alpha1." + string(want.Kind)))
		g.Expect(ev.Source()).To(Equal("/apis/im.chatgroup.dev/v1alpha1/namespaces/" + ns + "/chatgroups/" + cg.Name))
		g.Expect(ev.Subject()).To(Equal("@TGS#ce"))
		g.Expect(ev.Time().Equal(want.Time.Time)).To(BeTrue(), "time %v, want %v", ev.Time(), want.Time)
		g.Expect(ev.Extensions()).To(HaveKeyWithValue(TriggerExtension, "flux"))
		// Binary mode, and the data is CHATGROUP_EVENT_JSON.
		g.Expect(r.Header.Get("Content-Type")).To(Equal("application/json"))
		wantData, err := eventJSON(cg, "flux", &want)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.Body).To(MatchJSON(wantData))
		var data map[string]any
		g.Expect(json.Unmarshal(r.Body, &data)).To(Succeed())
		g.Expect(data).To(HaveKeyWithValue("trigger", "flux"))
		// The signature Flux's generic-hmac Receiver checks.
		g.Expect(github.ValidateSignature(r.Header.Get(cloudevent.SignatureHeader), r.Body, ceToken)).To(Succeed())
	}

	g.Eventually(func(g Gomega) {
		ts := triggerStatus(g, c, key, "flux")
		g.Expect(ts.Cursor).To(Equal(int64(3)))
		g.Expect(ts.LastDelivery).NotTo(BeNil())
		g.Expect(*ts.LastDelivery).To(And(HaveField("Seq", int64(3)), HaveField("Outcome", imv1.DeliveryDelivered),
			HaveField("Code", int32(http.StatusAccepted)), HaveField("ID", string(cg.UID)+"-3")))
	}, timeout, interval).Should(Succeed())
	g.Consistently(got, time.Second).ShouldNot(Receive(), "each entry is delivered once")
}

// gatedSink answers 503 until it is opened, then 200. It counts every
// request per event id and the acknowledged ones.
type gatedSink struct {
	mu    sync.Mutex
	open  bool
	seen  map[string]int
	acked []string
}

func (s *gatedSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.Header.Get("Ce-Id")
	s.seen[id]++
	if !s.open {
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	s.acked = append(s.acked, id)
	w.WriteHeader(http.StatusOK)
}

func (s *gatedSink) requests(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[id]
}

func (s *gatedSink) setOpen() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = true
}

func (s *gatedSink) ackedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.acked...)
}

func TestCloudEvent_retriesAndMovesTheCursorOnlyAfter2xx(t *testing.T) {
	c := integration(t)
	g := NewWithT(t)
	ns := newNamespace(t, c)
	sink := &gatedSink{seen: map[string]int{}}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	startManagerWith(t, ns, fastCloudEvents())

	ceTrigger(t, c, ns, "argo", &imv1.CloudEventAction{URL: srv.URL}, imv1.TriggerMembersJoined)
	cg := newGroup(t, c, ns, "@TGS#retry", map[string]string{"argo": "yes"})
	key := client.ObjectKeyFromObject(cg)
	writeGroupStatus(t, c, key, func(st *imv1.ChatGroupStatus) {
		appendJournal(st, entry(1, imv1.EventMembersJoined, "", "alice", "bob"), entry(2, imv1.EventMembersJoined, "", "alice", "carol"))
	})
	first, second := string(cg.UID)+"-1", string(cg.UID)+"-2"

	// More than one round of attempts fails: the trigger reports Retrying
	// and keeps its cursor before seq 1, and seq 2 is not sent ahead of it.
	g.Eventually(func(g Gomega) {
		g.Expect(sink.requests(first)).To(BeNumerically(">", 2))
		ts := triggerStatus(g, c, key, "argo")
		g.Expect(ts.LastDelivery).NotTo(BeNil())
		g.Expect(*ts.LastDelivery).To(And(HaveField("Seq", int64(1)), HaveField("Outcome", imv1.DeliveryRetrying),
			HaveField("Reason", cloudevent.ReasonSinkError), HaveField("Code", int32(http.StatusServiceUnavailable))))
	}, timeout, interval).Should(Succeed())
	g.Expect(triggerStatus(g, c, key, "argo").Cursor).To(BeZero())
	g.Expect(sink.requests(second)).To(BeZero())

	sink.setOpen()
	g.Eventually(func(g Gomega) {
		ts := triggerStatus(g, c, key, "argo")
		g.Expect(ts.Cursor).To(Equal(int64(2)))
		g.Expect(ts.LastDelivery).NotTo(BeNil())
		g.Expect(ts.LastDelivery.Outcome).To(Equal(imv1.DeliveryDelivered))
	}, timeout, interval).Should(Succeed())
	g.Consistently(sink.ackedIDs, time.Second).Should(Equal([]string{first, second}),
		"one acknowledged delivery per id, in journal order")
}

func TestCloudEvent_permanentFailureIsReportedAndPassed(t *testing.T) {
	c := integration(t)
	g := NewWithT(t)
	ns := newNamespace(t, c)
	var mu sync.Mutex
	var requests int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		http.Error(w, "no such receiver", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	startManagerWith(t, ns, fastCloudEvents())

	trig := ceTrigger(t, c, ns, "gone", &imv1.CloudEventAction{URL: srv.URL}, imv1.TriggerMembersJoined)
	cg := newGroup(t, c, ns, "@TGS#refused", map[string]string{"gone": "yes"})
	key := client.ObjectKeyFromObject(cg)
	writeGroupStatus(t, c, key, func(st *imv1.ChatGroupStatus) {
		appendJournal(st, entry(1, imv1.EventMembersJoined, "", "alice", "bob"), entry(2, imv1.EventMembersJoined, "", "alice", "carol"))
	})

	g.Eventually(func(g Gomega) {
		ts := triggerStatus(g, c, key, "gone")
		g.Expect(ts.Cursor).To(Equal(int64(2)), "the cursor moves past a permanent failure")
		g.Expect(ts.DeliveriesFailed).To(Equal(int64(2)))
		g.Expect(ts.LastDelivery).NotTo(BeNil())
		g.Expect(*ts.LastDelivery).To(And(HaveField("Seq", int64(2)), HaveField("Outcome", imv1.DeliveryFailed),
			HaveField("Reason", cloudevent.ReasonRejected), HaveField("Code", int32(http.StatusNotFound)),
			HaveField("Attempts", int32(1))))
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) []string { return eventReasons(g, c, cg) }, timeout, interval).
		Should(ContainElement(cloudEventFailedReason))
	g.Expect(testutil.ToFloat64(cloudEventsFailed.WithLabelValues(ns, trig.Name))).To(Equal(2.0))
	mu.Lock()
	defer mu.Unlock()
	g.Expect(requests).To(Equal(2), "a 404 is not retried")
}

// hangingSink takes requests and never answers until the test ends.
type hangingSink struct {
	stop chan struct{}
	got  chan string
}

func (h *hangingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.got <- r.Header.Get("Ce-Id")
	select {
	case <-h.stop:
	case <-r.Context().Done():
	}
	w.WriteHeader(http.StatusOK)
}

func TestCloudEvent_hangingSinkBlocksNoOtherTriggerOrGroup(t *testing.T) {
	c := integration(t)
	g := NewWithT(t)
	ns := newNamespace(t, c)
	hang := &hangingSink{stop: make(chan struct{}), got: make(chan string, 16)}
	slow := httptest.NewServer(hang)
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang.stop) })
	url, got := cloudeventtest.Sink(t)
	// One worker and a long attempt timeout: a reconcile that waited for
	// the hanging sink would stall every other group.
	opts := fastCloudEvents()
	opts.MaxConcurrentReconciles = 1
	opts.CloudEvents.AttemptTimeout = 10 * time.Minute
	startManagerWith(t, ns, opts)

	ceTrigger(t, c, ns, "slow", &imv1.CloudEventAction{URL: slow.URL}, imv1.TriggerDisbanded)
	ceTrigger(t, c, ns, "fast", &imv1.CloudEventAction{URL: url}, imv1.TriggerDisbanded)
	a := newGroup(t, c, ns, "@TGS#a", map[string]string{"slow": "yes", "fast": "yes"})
	b := newGroup(t, c, ns, "@TGS#b", map[string]string{"fast": "yes"})
	writeGroupStatus(t, c, client.ObjectKeyFromObject(a), func(st *imv1.ChatGroupStatus) {
		appendJournal(st, entry(1, imv1.EventDisbanded, "", "alice"))
	})
	var hung string
	g.Eventually(hang.got, timeout).Should(Receive(&hung))
	g.Expect(hung).To(Equal(string(a.UID) + "-1"))

	// While the slow sink holds its request, the fast trigger delivers to
	// the same group and to another group.
	writeGroupStatus(t, c, client.ObjectKeyFromObject(b), func(st *imv1.ChatGroupStatus) {
		appendJournal(st, entry(1, imv1.EventDisbanded, "", "bob"))
	})
	ids := map[string]bool{}
	for range 2 {
		var r cloudeventtest.Received
		g.Eventually(got, timeout).Should(Receive(&r))
		ids[r.Event.ID()] = true
	}
	g.Expect(ids).To(Equal(map[string]bool{string(a.UID) + "-1": true, string(b.UID) + "-1": true}))
	g.Eventually(func(g Gomega) {
		g.Expect(triggerStatus(g, c, client.ObjectKeyFromObject(a), "fast").Cursor).To(Equal(int64(1)))
		g.Expect(triggerStatus(g, c, client.ObjectKeyFromObject(b), "fast").Cursor).To(Equal(int64(1)))
	}, timeout, interval).Should(Succeed())
	g.Expect(triggerStatus(g, c, client.ObjectKeyFromObject(a), "slow").Cursor).To(BeZero(), "nothing was acknowledged")
}

func TestCloudEvent_defaultSinkAndMissingSecret(t *testing.T) {
	c := integration(t)
	g := NewWithT(t)
	ns := newNamespace(t, c)
	url, got := cloudeventtest.Sink(t)
	opts := fastCloudEvents()
	opts.DefaultSink = &cloudevent.Target{URL: url, Extensions: map[string]string{"sinkbinding": "chat"}}
	startManagerWith(t, ns, opts)

	// A missing token Secret holds the entry back and makes the group not
	// Ready; creating the Secret lets it through.
	ref := &corev1.LocalObjectReference{Name: "knative-token"}
	ceTrigger(t, c, ns, "knative", &imv1.CloudEventAction{SecretRef: ref}, imv1.TriggerCreated)
	cg := newGroup(t, c, ns, "@TGS#default", map[string]string{"knative": "yes"})
	key := client.ObjectKeyFromObject(cg)
	writeGroupStatus(t, c, key, func(st *imv1.ChatGroupStatus) {
		appendJournal(st, entry(1, imv1.EventCreated, "", "alice"))
	})
	g.Eventually(func(g Gomega) {
		ready := meta.FindStatusCondition(getGroup(g, c, key).Status.Conditions, imv1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Message).To(ContainSubstring("Secret knative-token not found"))
	}, timeout, interval).Should(Succeed())
	g.Expect(got).NotTo(Receive())

	tokenSecret(t, c, ns, ref.Name)
	var r cloudeventtest.Received
	g.Eventually(got, 2*secretRetry).Should(Receive(&r))
	g.Expect(r.Event.ID()).To(Equal(string(cg.UID) + "-1"))
	g.Expect(r.Event.Extensions()).To(And(HaveKeyWithValue("sinkbinding", "chat"), HaveKeyWithValue(TriggerExtension, "knative")))
	g.Expect(github.ValidateSignature(r.Header.Get(cloudevent.SignatureHeader), r.Body, ceToken)).To(Succeed())
}

func TestCloudEvent_schemaRejectsTriggersWithoutActionOrWithBadURL(t *testing.T) {
	c := integration(t)
	ns := newNamespace(t, c)
	for name, spec := range map[string]imv1.ChatGroupTriggerSpec{
		"no-action": {On: []imv1.TriggerEvent{imv1.TriggerCreated}},
		"ftp-url":   {On: []imv1.TriggerEvent{imv1.TriggerCreated}, CloudEvent: &imv1.CloudEventAction{URL: "ftp://sink.example/"}},
		"no-host":   {On: []imv1.TriggerEvent{imv1.TriggerCreated}, CloudEvent: &imv1.CloudEventAction{URL: "http:///path"}},
	} {
		t.Run(name, func(t *testing.T) {
			trig := &imv1.ChatGroupTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
			err := c.Create(context.Background(), trig)
			NewWithT(t).Expect(apierrors.IsInvalid(err)).To(BeTrue(), "create: %v", err)
		})
	}
	ok := &imv1.ChatGroupTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default-sink"},
		Spec: imv1.ChatGroupTriggerSpec{On: []imv1.TriggerEvent{imv1.TriggerCreated}, CloudEvent: &imv1.CloudEventAction{}}}
	NewWithT(t).Expect(c.Create(context.Background(), ok)).To(Succeed(), "cloudEvent: {} uses the default sink")
}

func TestRoundWait(t *testing.T) {
	g := NewWithT(t)
	g.Expect(roundWait(0, 0)).To(Equal(minRoundWait))
	g.Expect(roundWait(3*time.Second, 0)).To(Equal(3 * time.Second))
	g.Expect(roundWait(3*time.Second, 2)).To(Equal(12 * time.Second))
	g.Expect(roundWait(time.Second, 1000)).To(Equal(maxRoundWait))
}

func TestCloudEvent_withAJobTheJobStartsFirstAndOnce(t *testing.T) {
	c := integration(t)
	g := NewWithT(t)
	ns := newNamespace(t, c)
	sink := &gatedSink{seen: map[string]int{}}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	startManagerWith(t, ns, fastCloudEvents())

	trig := jobTrigger(ns, "both", nil, imv1.TriggerDisbanded)
	trig.Spec.CloudEvent = &imv1.CloudEventAction{URL: srv.URL}
	g.Expect(c.Create(context.Background(), trig)).To(Succeed())
	cg := newGroup(t, c, ns, "@TGS#both", map[string]string{"selected": "both"})
	key := client.ObjectKeyFromObject(cg)
	writeGroupStatus(t, c, key, func(st *imv1.ChatGroupStatus) {
		appendJournal(st, entry(1, imv1.EventDisbanded, "", "alice"))
	})

	// The sink refuses for now: the Job runs anyway, the cursor waits.
	g.Eventually(func(g Gomega) {
		g.Expect(jobsOf(g, c, cg)).To(HaveLen(1))
		ts := triggerStatus(g, c, key, "both")
		g.Expect(ts.LastDelivery).NotTo(BeNil())
		g.Expect(ts.LastDelivery.Outcome).To(Equal(imv1.DeliveryRetrying))
		g.Expect(sink.requests(string(cg.UID) + "-1")).To(BeNumerically(">", 2))
	}, timeout, interval).Should(Succeed())
	g.Expect(triggerStatus(g, c, key, "both").Cursor).To(BeZero())

	sink.setOpen()
	g.Eventually(func(g Gomega) int64 { return triggerStatus(g, c, key, "both").Cursor }, timeout, interval).Should(Equal(int64(1)))
	g.Expect(jobsOf(g, c, cg)).To(HaveLen(1))
	created := 0
	for _, reason := range eventReasons(g, c, cg) {
		if reason == jobCreatedReason {
			created++
		}
	}
	g.Expect(created).To(Equal(1), "the Job was created once, not on every round")
}
