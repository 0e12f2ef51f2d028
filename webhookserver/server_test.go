package webhookserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim/openimtest"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
	. "chatgroup.dev/chatgroup-operator/webhookserver"
)

const (
	testNS       = "chat"
	testAppID    = tencenttest.SampleAppID
	tencentToken = "xxxxyyyy"
	openIMToken  = "openim-token"
)

// The seed pages' bodies: Tencent's member exit, OpenIM's quit.
var (
	tencentExitBody = string(tencenttest.Sample("exit"))
	openIMQuitBody  = string(openimtest.Sample("quit"))
)

// fakeBase is the callback server's URL in requests served by ServeHTTP.
const fakeBase = "http://callbacks.test"

type harness struct {
	srv    *Server
	client client.Client
	now    time.Time
}

// receivers are the fixtures of the fake API server.
var receivers = []testsupport.Receiver{
	{Name: "tencent", Provider: imv1.ProviderTencent, Token: tencentToken},
	{Name: "openim", Provider: imv1.ProviderOpenIM, Token: openIMToken, PreviousToken: "old-token"},
	{Name: "openim-basic", Provider: imv1.ProviderOpenIM, Token: "basic-token", Username: "im", Password: "s3cret"},
}

// fakeClient returns a fake API server holding the receivers and their
// Secrets.
func fakeClient(receivers ...testsupport.Receiver) *fake.ClientBuilder {
	var objs []client.Object
	for _, r := range receivers {
		r.Namespace, r.GroupLabels = testNS, map[string]string{"team": "support"}
		rcv, secret := r.Objects()
		objs = append(objs, rcv, secret)
	}
	return fake.NewClientBuilder().WithScheme(testsupport.Scheme()).WithObjects(objs...).
		WithStatusSubresource(&imv1.ChatGroup{}, &imv1.ChatReceiver{}).
		WithIndex(&imv1.ChatReceiver{}, WebhookPathIndex, ReceiverPaths)
}

func newHarness(t *testing.T, mutate ...func(*Options)) *harness {
	t.Helper()
	return newHarnessWithClient(t, fakeClient(receivers...).Build(), mutate...)
}

func newHarnessWithClient(_ *testing.T, c client.Client, mutate ...func(*Options)) *harness {
	opts := DefaultOptions()
	for _, m := range mutate {
		m(&opts)
	}
	h := &harness{client: c, now: time.Unix(1670574474, 0)} // a minute after the samples' EventTime
	h.srv = NewForTest(c, opts, func() time.Time { return h.now })
	return h
}

// exitURL builds the URL of a member exit callback, signed now by the
// Tencent receiver's sender (its token and appID, unless changed).
func (h *harness) exitURL(change ...func(*tencenttest.Sender)) string {
	sender := tencenttest.Sender{AppID: testAppID, Token: tencentToken}
	for _, c := range change {
		c(&sender)
	}
	u, err := sender.URL(fakeBase, imv1.WebhookPath(testNS, "tencent", tencentToken), tencent.MemberExit, h.now)
	if err != nil {
		panic(err)
	}
	return u
}

// oldExitURL is exitURL signed age ago.
func (h *harness) oldExitURL(age time.Duration) string {
	sender := tencenttest.Sender{AppID: testAppID, Token: tencentToken}
	u, err := sender.URL(fakeBase, imv1.WebhookPath(testNS, "tencent", tencentToken), tencent.MemberExit, h.now.Add(-age))
	if err != nil {
		panic(err)
	}
	return u
}

func (h *harness) do(method, url, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, url, strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:40000"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	return rec
}

func (h *harness) group(g Gomega, provider imv1.Provider, appID, groupID string) *imv1.ChatGroup {
	cg := &imv1.ChatGroup{}
	key := types.NamespacedName{Namespace: testNS, Name: imv1.ChatGroupName(provider, appID, groupID)}
	g.Expect(h.client.Get(context.Background(), key, cg)).To(Succeed())
	return cg
}

type tencentReply struct {
	ActionStatus string
	ErrorInfo    string
	ErrorCode    int
}

type openIMReply struct {
	ActionCode int    `json:"actionCode"`
	ErrCode    int    `json:"errCode"`
	ErrMsg     string `json:"errMsg"`
	ErrDlt     string `json:"errDlt"`
	NextCode   int    `json:"nextCode"`
}

func TestServer_tencentCallbackIsStoredBeforeTheReply(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)

	rec := h.do(http.MethodPost, h.exitURL(), tencentExitBody)
	g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())
	g.Expect(rec.Header().Get("Content-Type")).To(Equal("application/json; charset=utf-8"))
	var reply tencentReply
	g.Expect(json.Unmarshal(rec.Body.Bytes(), &reply)).To(Succeed())
	g.Expect(reply).To(Equal(tencentReply{ActionStatus: "OK", ErrorInfo: "applied"}))

	cg := h.group(g, imv1.ProviderTencent, testAppID, "@TGS#2J4SZEAEL")
	g.Expect(cg.Spec).To(Equal(imv1.ChatGroupSpec{Provider: imv1.ProviderTencent, AppID: testAppID, GroupID: "@TGS#2J4SZEAEL"}))
	g.Expect(cg.Labels).To(HaveKeyWithValue("team", "support"))
	g.Expect(cg.Labels).To(HaveKeyWithValue(imv1.AppIDLabel, testAppID))
	g.Expect(cg.Status.Departed).To(HaveLen(2))
	g.Expect(cg.Status.Journal).To(HaveLen(1))
	g.Expect(cg.Status.Journal[0].Reason).To(Equal(imv1.LeaveKicked))
	g.Expect(cg.Status.Journal[0].Time.Time).To(BeTemporally("==", time.UnixMilli(1670574414123)))

	// Re-signed and resent a second later: a duplicate, acknowledged again.
	h.now = h.now.Add(time.Second)
	rec = h.do(http.MethodPost, h.exitURL(), tencentExitBody)
	g.Expect(rec.Code).To(Equal(http.StatusOK))
	g.Expect(rec.Body.String()).To(ContainSubstring(`"ErrorInfo":"duplicate"`))
	g.Expect(h.group(g, imv1.ProviderTencent, testAppID, "@TGS#2J4SZEAEL").Status.EventsApplied).To(Equal(int64(1)))
}

func TestServer_openIMCallback(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	base := imv1.WebhookPath(testNS, "openim", openIMToken)

	for _, url := range []string{base + "/callbackAfterQuitGroupCommand", base + "/callbackAfterQuitGroupCommand?contenttype=json"} {
		rec := h.do(http.MethodPost, url, openIMQuitBody+"\n", "operationID", "op-"+url[len(url)-4:])
		g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())
		var reply openIMReply
		g.Expect(json.Unmarshal(rec.Body.Bytes(), &reply)).To(Succeed())
		g.Expect(reply).To(Equal(openIMReply{ErrMsg: "applied"}))
		h.now = h.now.Add(time.Second)
	}
	cg := h.group(g, imv1.ProviderOpenIM, openimtest.SampleAppID, "G001")
	g.Expect(cg.Status.Departed).To(HaveLen(1))
	g.Expect(cg.Status.LastSeq).To(Equal(int64(2)), "two quits with different operationIDs are two events")

	// The path from the previous token keeps working during a rotation.
	old := imv1.WebhookPath(testNS, "openim", "old-token")
	rec := h.do(http.MethodPost, old+"/callbackAfterKickGroupCommand", `{"callbackCommand":"callbackAfterKickGroupCommand","groupID":"G001","kickedUserIDs":["x"],"reason":"spam"}`)
	g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())
}

func TestServer_rejections(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxBodyBytes = 1024 })
	openim := imv1.WebhookPath(testNS, "openim", openIMToken)
	basic := imv1.WebhookPath(testNS, "openim-basic", "basic-token")
	unsigned := func(s *tencenttest.Sender) { s.Token = "" }

	tests := []struct {
		name     string
		method   string
		url      string
		body     string
		header   []string
		want     int
		tencent  bool
		contains string
	}{
		{name: "unknown path", url: "/callbacks/" + strings.Repeat("0", 64) + "/callbackAfterQuitGroupCommand", body: openIMQuitBody, want: 404, contains: "no receiver"},
		{name: "unknown path in Tencent's shape", url: "/callbacks/" + strings.Repeat("0", 64) + "?CallbackCommand=Group.CallbackAfterMemberExit", body: tencentExitBody, want: 404, tencent: true},
		{name: "path outside /callbacks", url: "/healthz", want: 404},
		{name: "OpenIM path without a command", url: openim, body: openIMQuitBody, want: 404},
		{name: "wrong method", method: http.MethodGet, url: openim + "/callbackAfterQuitGroupCommand", want: 405, contains: "use POST"},
		{name: "wrong SdkAppid", url: h.exitURL(unsigned, func(s *tencenttest.Sender) { s.AppID = "1" }), body: tencentExitBody, want: 403, tencent: true, contains: "SdkAppid"},
		{name: "missing signature", url: h.exitURL(unsigned), body: tencentExitBody, want: 401, tencent: true, contains: "missing Sign"},
		{name: "bad signature", url: h.exitURL(func(s *tencenttest.Sender) { s.Token = "not the token" }), body: tencentExitBody, want: 401, tencent: true, contains: "signature mismatch"},
		{name: "request time outside the window", url: h.oldExitURL(2 * time.Minute), body: tencentExitBody, want: 401, tencent: true, contains: "away from the server clock"},
		{name: "body too large", url: openim + "/callbackAfterQuitGroupCommand", body: `{"groupID":"` + strings.Repeat("x", 2048) + `"}`, want: 413},
		{name: "malformed JSON", url: openim + "/callbackAfterQuitGroupCommand", body: `{"groupID":`, want: 400},
		{name: "wrong field type", url: h.exitURL(), body: `{"CallbackCommand":"Group.CallbackAfterMemberExit","GroupId":5}`, want: 400, tencent: true},
		{name: "unknown command is ignored", url: openim + "/callbackAfterSendGroupMsgCommand", body: `{}`, want: 200, contains: "ignored"},
		{name: "basic auth required", url: basic + "/callbackAfterQuitGroupCommand", body: openIMQuitBody, want: 401, contains: "basic auth"},
		{name: "basic auth accepted", url: basic + "/callbackAfterQuitGroupCommand", body: openIMQuitBody, header: []string{"Authorization", "Basic aW06czNjcmV0"}, want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			rec := h.do(method, tt.url, tt.body, tt.header...)
			g.Expect(rec.Code).To(Equal(tt.want), rec.Body.String())
			if tt.tencent {
				var reply tencentReply
				g.Expect(json.Unmarshal(rec.Body.Bytes(), &reply)).To(Succeed(), rec.Body.String())
				g.Expect(reply.ActionStatus).To(Equal(map[bool]string{true: "OK", false: "FAIL"}[tt.want == 200]))
				g.Expect(reply.ErrorInfo).To(ContainSubstring(tt.contains))
			} else {
				var reply openIMReply
				g.Expect(json.Unmarshal(rec.Body.Bytes(), &reply)).To(Succeed(), rec.Body.String())
				g.Expect(reply.ActionCode).To(Equal(map[bool]int{true: 0, false: 1}[tt.want == 200]))
				g.Expect(reply.NextCode).To(Equal(0))
				g.Expect(reply.ErrMsg).To(ContainSubstring(tt.contains))
			}
			if tt.want == 405 {
				g.Expect(rec.Header().Get("Allow")).To(Equal("POST"))
			}
		})
	}
}

func TestServer_replayIsRejected(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	url := h.exitURL()
	g.Expect(h.do(http.MethodPost, url, tencentExitBody).Code).To(Equal(http.StatusOK))
	rec := h.do(http.MethodPost, url, tencentExitBody)
	g.Expect(rec.Code).To(Equal(http.StatusUnauthorized))
	g.Expect(rec.Body.String()).To(ContainSubstring("replayed"))

	// Another callback signed in the same second carries the same Sign and
	// must not be taken for a replay.
	other := strings.Replace(tencentExitBody, "tommy", "tom", 1)
	g.Expect(h.do(http.MethodPost, url, other).Code).To(Equal(http.StatusOK))
}

func TestServer_rateLimit(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	rcv := &imv1.ChatReceiver{}
	g.Expect(h.client.Get(context.Background(), types.NamespacedName{Namespace: testNS, Name: "openim"}, rcv)).To(Succeed())
	rcv.Spec.RateLimit = &imv1.RateLimit{RequestsPerSecond: 1, Burst: 2}
	g.Expect(h.client.Update(context.Background(), rcv)).To(Succeed())

	url := imv1.WebhookPath(testNS, "openim", openIMToken) + "/callbackAfterSendGroupMsgCommand"
	codes := []int{}
	for range 3 {
		codes = append(codes, h.do(http.MethodPost, url, `{}`).Code)
	}
	g.Expect(codes).To(Equal([]int{200, 200, 429}))
}

func TestServer_allowedCIDRs(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	rcv := &imv1.ChatReceiver{}
	g.Expect(h.client.Get(context.Background(), types.NamespacedName{Namespace: testNS, Name: "openim"}, rcv)).To(Succeed())
	rcv.Spec.AllowedCIDRs = []string{"10.0.0.0/8"}
	g.Expect(h.client.Update(context.Background(), rcv)).To(Succeed())
	url := imv1.WebhookPath(testNS, "openim", openIMToken) + "/callbackAfterQuitGroupCommand"
	g.Expect(h.do(http.MethodPost, url, openIMQuitBody).Code).To(Equal(http.StatusForbidden))

	rcv.Spec.AllowedCIDRs = []string{"127.0.0.0/8", "::1/128"}
	g.Expect(h.client.Update(context.Background(), rcv)).To(Succeed())
	g.Expect(h.do(http.MethodPost, url, openIMQuitBody).Code).To(Equal(http.StatusOK))
}

// TestServer_commitBudget: when the API server does not answer in time the
// reply is 503 in the provider's failure shape, and the event is still
// stored once the API server recovers.
func TestServer_commitBudget(t *testing.T) {
	g := NewWithT(t)
	failing := make(chan struct{})
	base := fakeClient(testsupport.Receiver{Name: "openim", Provider: imv1.ProviderOpenIM, Token: openIMToken}).
		WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				select {
				case <-failing:
					return c.Create(ctx, obj, opts...)
				default:
					return fmt.Errorf("connection refused")
				}
			},
		}).Build()
	h := newHarnessWithClient(t, base, func(o *Options) { o.CommitBudget = 100 * time.Millisecond })

	url := imv1.WebhookPath(testNS, "openim", openIMToken) + "/callbackAfterQuitGroupCommand"
	rec := h.do(http.MethodPost, url, openIMQuitBody)
	g.Expect(rec.Code).To(Equal(http.StatusServiceUnavailable))
	g.Expect(rec.Header().Get("Retry-After")).To(Equal("1"))
	var reply openIMReply
	g.Expect(json.Unmarshal(rec.Body.Bytes(), &reply)).To(Succeed())
	g.Expect(reply.ActionCode).To(Equal(1))
	g.Expect(reply.ErrMsg).To(ContainSubstring("being retried"))

	close(failing) // the API server is back
	g.Eventually(func(g Gomega) {
		g.Expect(h.group(g, imv1.ProviderOpenIM, openimtest.SampleAppID, "G001").Status.Departed).To(HaveLen(1))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}
