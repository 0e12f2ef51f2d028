package webhookserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim/openimtest"
	"chatgroup.dev/chatgroup-operator/webhookserver"
)

func TestServer_R7_futureEventTimeIsRejected(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	future := strings.Replace(tencentExitBody, "1670574414123", "253402300799000", 1) // 9999-12-31
	g.Expect(future).NotTo(Equal(tencentExitBody))
	rec := h.do(http.MethodPost, h.exitURL(), future)
	g.Expect(rec.Code).To(Equal(http.StatusBadRequest), rec.Body.String())
	g.Expect(rec.Body.String()).To(ContainSubstring(`"ActionStatus":"FAIL"`))
	g.Expect(rec.Body.String()).To(ContainSubstring("ahead of the server clock"))

	// Within the allowed skew, it is accepted.
	h.now = time.UnixMilli(1670574414123).Add(-5 * time.Minute)
	rec = h.do(http.MethodPost, h.exitURL(), tencentExitBody)
	g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())
}

func TestServer_K3_keyIsOverTheCanonicalEvent(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	g.Expect(h.do(http.MethodPost, h.exitURL(), tencentExitBody).Code).To(Equal(http.StatusOK))
	variants := map[string]string{
		"escaped @":        strings.Replace(tencentExitBody, `"@TGS#2J4SZEAEL"`, `"\u0040TGS#2J4SZEAEL"`, 1),
		"numeric time":     strings.Replace(tencentExitBody, `"1670574414123"`, `1670574414123`, 1),
		"unknown field":    strings.Replace(tencentExitBody, `{`, `{"Extra":1,`, 1),
		"operationID only": tencentExitBody,
	}
	for name, body := range variants {
		h.now = h.now.Add(time.Second)
		g.Expect(body != tencentExitBody || name == "operationID only").To(BeTrue(), name)
		rec := h.do(http.MethodPost, h.exitURL(), body, "operationID", "op-"+name)
		g.Expect(rec.Code).To(Equal(http.StatusOK), name+": "+rec.Body.String())
		g.Expect(rec.Body.String()).To(ContainSubstring(`"ErrorInfo":"duplicate"`), name)
	}
	g.Expect(h.group(g, imv1.ProviderTencent, testAppID, "@TGS#2J4SZEAEL").Status.LastSeq).To(Equal(int64(1)))
}

func TestServer_H3_oversizedEventIsPermanentAndSparesOthers(t *testing.T) {
	g := NewWithT(t)
	gate := make(chan struct{})
	c := fakeClient(receivers...).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			select {
			case <-gate:
				return c.Create(ctx, obj, opts...)
			default:
				return fmt.Errorf("connection refused")
			}
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if cg, ok := obj.(*imv1.ChatGroup); ok && strings.Contains(fmt.Sprint(cg.Status.Departed), "poison") {
				return apierrors.NewRequestEntityTooLargeError("limit is 3145728")
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}).Build()
	h := newHarnessWithClient(t, c, func(o *webhookserver.Options) { o.CommitBudget = 50 * time.Millisecond })
	base := imv1.WebhookPath(testNS, "openim", openIMToken)
	poison := `{"callbackCommand":"callbackAfterKickGroupCommand","groupID":"G001","kickedUserIDs":["poison"],"reason":"x"}`
	g.Expect(h.do(http.MethodPost, base+"/callbackAfterKickGroupCommand", poison, "operationID", "a").Code).To(Equal(http.StatusServiceUnavailable))
	g.Expect(h.do(http.MethodPost, base+"/callbackAfterQuitGroupCommand", openIMQuitBody, "operationID", "b").Code).To(Equal(http.StatusServiceUnavailable))
	close(gate)
	g.Eventually(func(g Gomega) {
		g.Expect(h.group(g, imv1.ProviderOpenIM, openimtest.SampleAppID, "G001").Status.Departed).To(HaveLen(1), "the valid quit is stored")
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

func TestServer_preCreatedGroupGetsReceiverLabels(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	name := imv1.ChatGroupName(imv1.ProviderTencent, testAppID, "@TGS#2J4SZEAEL")
	pre := &imv1.ChatGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, Labels: map[string]string{"mine": "yes", "team": "mine"}},
		Spec:       imv1.ChatGroupSpec{Provider: imv1.ProviderTencent, AppID: testAppID, GroupID: "@TGS#2J4SZEAEL"},
	}
	g.Expect(h.client.Create(context.Background(), pre)).To(Succeed())
	g.Expect(h.do(http.MethodPost, h.exitURL(), tencentExitBody).Code).To(Equal(http.StatusOK))
	cg := h.group(g, imv1.ProviderTencent, testAppID, "@TGS#2J4SZEAEL")
	g.Expect(cg.Labels).To(HaveKeyWithValue(imv1.AppIDLabel, testAppID))
	g.Expect(cg.Labels).To(HaveKeyWithValue("mine", "yes"))
	g.Expect(cg.Labels).To(HaveKeyWithValue("team", "mine"), "the user's own value is kept")
	g.Expect(cg.Status.Departed).To(HaveLen(2))
}

func TestServer_M1_lateEventDoesNotResurrectDeletedGroup(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	ctx := context.Background()
	name := imv1.ChatGroupName(imv1.ProviderTencent, testAppID, "@TGS#2J4SZEAEL")
	// What ttlAfterDisband's deletion leaves behind on the receiver.
	rcv := &imv1.ChatReceiver{}
	g.Expect(h.client.Get(ctx, types.NamespacedName{Namespace: testNS, Name: "tencent"}, rcv)).To(Succeed())
	rcv.Status.DisbandFences = []imv1.DisbandFence{{Name: name,
		DisbandedAt: metav1.NewMicroTime(time.UnixMilli(1670574414123 + 1000)), DeletedAt: metav1.NewTime(h.now)}}
	g.Expect(h.client.Status().Update(ctx, rcv)).To(Succeed())

	rec := h.do(http.MethodPost, h.exitURL(), tencentExitBody) // happened a second before the disband
	g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())
	g.Expect(rec.Body.String()).To(ContainSubstring(`"ErrorInfo":"stale"`))
	err := h.client.Get(ctx, types.NamespacedName{Namespace: testNS, Name: name}, &imv1.ChatGroup{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the deleted group is not re-created: %v", err)

	// An event newer than the disband starts the group again, fenced.
	newer := strings.Replace(tencentExitBody, "1670574414123", "1670574416123", 1)
	h.now = h.now.Add(time.Second)
	rec = h.do(http.MethodPost, h.exitURL(), newer)
	g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())
	cg := h.group(g, imv1.ProviderTencent, testAppID, "@TGS#2J4SZEAEL")
	g.Expect(cg.Status.DisbandedAt.Time).To(BeTemporally("==", time.UnixMilli(1670574414123+1000)))
}

// droppedTotal reads chatgroup_dropped_events_total{reason} from the
// controller-runtime registry.
func droppedTotal(g Gomega, reason string) float64 {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "chatgroup_dropped_events_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestServer_M4_permanentErrorAfter503IsReported(t *testing.T) {
	g := NewWithT(t)
	c := fakeClient(receivers...).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*imv1.ChatGroup); ok {
				time.Sleep(150 * time.Millisecond) // past the commit budget
				return apierrors.NewForbidden(imv1.GroupVersion.WithResource("chatgroups").GroupResource(), "x",
					fmt.Errorf("exceeded quota: count/chatgroups.im.chatgroup.dev"))
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()
	recorder := events.NewFakeRecorder(10)
	opts := webhookserver.DefaultOptions()
	opts.CommitBudget = 50 * time.Millisecond
	now := time.Unix(1670574474, 0)
	srv := webhookserver.NewForTestWithRecorder(c, opts, func() time.Time { return now }, recorder)
	before := droppedTotal(g, "permanent")

	req := httptest.NewRequest(http.MethodPost, imv1.WebhookPath(testNS, "openim", openIMToken)+"/callbackAfterQuitGroupCommand",
		strings.NewReader(openIMQuitBody))
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	g.Expect(rec.Code).To(Equal(http.StatusServiceUnavailable), rec.Body.String())

	g.Eventually(recorder.Events).WithTimeout(5 * time.Second).Should(Receive(ContainSubstring("EventsDropped")))
	g.Expect(droppedTotal(g, "permanent") - before).To(Equal(1.0))
}

func TestServer_M3_shutdownDropsAreReportedBeforeStartReturns(t *testing.T) {
	g := NewWithT(t)
	c := fakeClient(receivers...).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*imv1.ChatGroup); ok {
				return fmt.Errorf("connection refused")
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()
	recorder := events.NewFakeRecorder(10)
	opts := webhookserver.DefaultOptions()
	opts.Addr, opts.CommitBudget = "127.0.0.1:0", 50*time.Millisecond
	srv := webhookserver.NewForTestWithRecorder(c, opts, time.Now, recorder)
	before := droppedTotal(g, "shutdown")

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Start(ctx) }()
	g.Eventually(srv.BoundAddr).ShouldNot(BeEmpty())
	url := "http://" + srv.BoundAddr() + imv1.WebhookPath(testNS, "openim", openIMToken) + "/callbackAfterQuitGroupCommand"
	resp, err := http.Post(url, "application/json", strings.NewReader(openIMQuitBody))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.Body.Close()).To(Succeed())
	g.Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))

	cancel()
	g.Eventually(stopped).WithTimeout(30 * time.Second).Should(Receive(BeNil()))
	// At the moment Start returns (and the process may exit), the drop is
	// already counted and reported.
	g.Expect(droppedTotal(g, "shutdown") - before).To(Equal(1.0))
	g.Expect(recorder.Events).To(Receive(ContainSubstring("EventsDropped")))
}

func TestServer_N3_nameCollisionRaisesWarningOnReceiver(t *testing.T) {
	g := NewWithT(t)
	c := fakeClient(receivers...).Build()
	name := imv1.ChatGroupName(imv1.ProviderOpenIM, openimtest.SampleAppID, "G001")
	// Another group already holds the name (a collision, or a wrong
	// pre-created object).
	g.Expect(c.Create(context.Background(), &imv1.ChatGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name},
		Spec:       imv1.ChatGroupSpec{Provider: imv1.ProviderOpenIM, GroupID: "other"},
	})).To(Succeed())
	recorder := events.NewFakeRecorder(10)
	srv := webhookserver.NewForTestWithRecorder(c, webhookserver.DefaultOptions(), time.Now, recorder)
	before := droppedTotal(g, "permanent")

	req := httptest.NewRequest(http.MethodPost, imv1.WebhookPath(testNS, "openim", openIMToken)+"/callbackAfterQuitGroupCommand",
		strings.NewReader(openIMQuitBody))
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	g.Expect(rec.Code).To(Equal(http.StatusInternalServerError), rec.Body.String())
	g.Expect(recorder.Events).To(Receive(And(ContainSubstring("Warning"), ContainSubstring("EventsDropped"), ContainSubstring("another group"))))
	g.Expect(droppedTotal(g, "permanent") - before).To(Equal(1.0))
}
