package webhookserver_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
	. "chatgroup.dev/chatgroup-operator/webhookserver"
)

// The tests in this file are named after the findings of the security
// audit they close.

// TestServer_L7_genericErrorBeforeAuthentication: an unsigned request to a
// receiver whose Secret cannot be read learns nothing about the Secret.
func TestServer_L7_genericErrorBeforeAuthentication(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	g.Expect(h.client.Delete(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "tencent"}})).To(Succeed())

	rec := h.do(http.MethodPost, h.exitURL(), tencentExitBody)
	g.Expect(rec.Code).To(Equal(http.StatusServiceUnavailable))
	g.Expect(rec.Body.String()).To(ContainSubstring(http.StatusText(http.StatusServiceUnavailable)))
	g.Expect(rec.Body.String()).NotTo(ContainSubstring("tencent"))
	g.Expect(rec.Body.String()).NotTo(ContainSubstring("not found"))
}

// TestServer_M6_controlCharactersInIDsAreRejected: an ID with a newline
// (or any control character) is refused with 400 in the provider's format,
// and nothing is stored.
func TestServer_M6_controlCharactersInIDsAreRejected(t *testing.T) {
	for name, id := range map[string]string{"newline": `eve\nadmin`, "NUL": `eve\u0000`, "escape": `eve\u001b[2J`, "line separator": "eve\u2028admin"} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			h := newHarness(t)
			body := `{"CallbackCommand":"Group.CallbackAfterMemberExit","GroupId":"@TGS#M6","Type":"Public","ExitType":"Quit","Operator_Account":"eve","ExitMemberList":[{"Member_Account":"` + id + `"}],"EventTime":1669872112000}`
			rec := h.do(http.MethodPost, h.exitURL(), body)
			g.Expect(rec.Code).To(Equal(http.StatusBadRequest), rec.Body.String())
			g.Expect(rec.Body.String()).To(ContainSubstring("control character"))
			g.Expect(rec.Body.String()).To(ContainSubstring(`"ActionStatus":"FAIL"`))
			var groups imv1.ChatGroupList
			g.Expect(h.client.List(context.Background(), &groups)).To(Succeed())
			g.Expect(groups.Items).To(BeEmpty())
		})
	}
}

// TestServer_M5_rateLimitCountsOnlyAuthenticatedRequests: unsigned
// requests to a known path do not spend the receiver's rate limit; past
// their source's budget of failures they get 429, yet the platform's
// signed callbacks from the same address still get through.
func TestServer_M5_rateLimitCountsOnlyAuthenticatedRequests(t *testing.T) {
	g := NewWithT(t)
	r := testsupport.Receiver{Name: "tencent", Provider: imv1.ProviderTencent, Token: tencentToken,
		RateLimit: &imv1.RateLimit{RequestsPerSecond: 1, Burst: 2}}
	h := newHarnessWithClient(t, fakeClient(r).Build(), func(o *Options) { o.FailedAuthBurst = 5 })

	unsigned := h.exitURL(func(s *tencenttest.Sender) { s.Token = "wrong" })
	codes := map[int]int{}
	for range 50 {
		codes[h.do(http.MethodPost, unsigned, tencentExitBody).Code]++
	}
	g.Expect(codes).To(Equal(map[int]int{http.StatusUnauthorized: 5, http.StatusTooManyRequests: 45}))

	rec := h.do(http.MethodPost, h.exitURL(), exitOf("G1"))
	g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())

	// The receiver's own limit still holds for authenticated requests.
	g.Expect(h.do(http.MethodPost, h.exitURL(), exitOf("G2")).Code).To(Equal(http.StatusOK))
	g.Expect(h.do(http.MethodPost, h.exitURL(), exitOf("G3")).Code).To(Equal(http.StatusTooManyRequests))
}

// exitOf is the sample member exit for another group.
func exitOf(groupID string) string {
	return strings.Replace(tencentExitBody, "@TGS#2J4SZEAEL", groupID, 1)
}

// TestServer_H2_operatorCeilingCapsReceiverRateLimits: a tenant cannot set
// its own rate limit above the operator's ceiling.
func TestServer_H2_operatorCeilingCapsReceiverRateLimits(t *testing.T) {
	g := NewWithT(t)
	r := testsupport.Receiver{Name: "tencent", Provider: imv1.ProviderTencent, Token: tencentToken,
		RateLimit: &imv1.RateLimit{RequestsPerSecond: 1000000, Burst: 1000000}}
	h := newHarnessWithClient(t, fakeClient(r).Build(), func(o *Options) { o.MaxReceiverRate, o.MaxReceiverBurst = 1, 3 })
	codes := map[int]int{}
	for i := range 5 {
		codes[h.do(http.MethodPost, h.exitURL(), exitOf(fmt.Sprint("G", i))).Code]++
	}
	g.Expect(codes).To(Equal(map[int]int{http.StatusOK: 3, http.StatusTooManyRequests: 2}))
}

// TestOptions_M1_signWindowIsCapped: a captured Tencent URL is a bearer
// credential for the whole window, so the window cannot be made long.
func TestOptions_M1_signWindowIsCapped(t *testing.T) {
	g := NewWithT(t)
	o := DefaultOptions()
	o.SignWindow = MaxSignWindow
	g.Expect(o.Validate()).To(Succeed())
	o.SignWindow = MaxSignWindow + time.Second
	g.Expect(o.Validate()).To(MatchError(ContainSubstring("tencent-sign-window must be in (0, 5m0s]")))
}

// signedExit is a member exit for groupID, signed for the Tencent receiver
// name with token.
func (h *harness) signedExit(name, token string) string {
	sender := tencenttest.Sender{AppID: testAppID, Token: token}
	u, err := sender.URL(fakeBase, imv1.WebhookPath(testNS, name, token), "Group.CallbackAfterMemberExit", h.now)
	if err != nil {
		panic(err)
	}
	return u
}

// TestServer_H2_chatGroupsPerReceiverAreCapped: a receiver cannot create
// ChatGroups beyond --max-chatgroups-per-receiver; its existing groups
// still get their events.
func TestServer_H2_chatGroupsPerReceiverAreCapped(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, func(o *Options) { o.MaxGroupsPerReceiver = 3 })
	codes := map[int]int{}
	for i := range 5 {
		rec := h.do(http.MethodPost, h.exitURL(), exitOf(fmt.Sprint("G", i)))
		codes[rec.Code]++
		if rec.Code == http.StatusTooManyRequests {
			g.Expect(rec.Body.String()).To(ContainSubstring("maximum number of ChatGroups"))
		}
	}
	g.Expect(codes).To(Equal(map[int]int{http.StatusOK: 3, http.StatusTooManyRequests: 2}))
	var groups imv1.ChatGroupList
	g.Expect(h.client.List(context.Background(), &groups)).To(Succeed())
	g.Expect(groups.Items).To(HaveLen(3))

	h.now = h.now.Add(time.Second)
	g.Expect(h.do(http.MethodPost, h.exitURL(), strings.Replace(exitOf("G0"), "jared", "someone", 1)).Code).To(Equal(http.StatusOK))
}

// TestServer_H2_pendingEventsArePerReceiver: while one tenant's writes are
// stuck, its callbacks use up only its own share of the queue, and another
// tenant's callbacks are still stored.
func TestServer_H2_pendingEventsArePerReceiver(t *testing.T) {
	g := NewWithT(t)
	stuck := make(chan struct{})
	tenants := []testsupport.Receiver{
		{Name: "tenant-a", Provider: imv1.ProviderTencent, Token: "token-a"},
		{Name: "tenant-b", Provider: imv1.ProviderTencent, Token: "token-b"},
	}
	c := fakeClient(tenants...).WithInterceptorFuncs(interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			if obj.GetLabels()[imv1.ReceiverLabel] == "tenant-a" {
				<-stuck
			}
			return c.SubResource(sub).Patch(ctx, obj, p, opts...)
		},
	}).Build()
	h := newHarnessWithClient(t, c, func(o *Options) { o.MaxPendingPerReceiver, o.CommitBudget = 2, slowMachineCommitBudget })

	// Three events of tenant-a: two take its two slots and wait for the
	// stuck writes, the third is refused at once.
	codes := make(chan int, 3)
	for i := range 3 {
		url, body := h.signedExit("tenant-a", "token-a"), exitOf(fmt.Sprint("A", i))
		go func() { codes <- h.do(http.MethodPost, url, body).Code }()
	}
	g.Expect(<-codes).To(Equal(http.StatusTooManyRequests))

	// Meanwhile tenant-b's events are stored.
	rec := h.do(http.MethodPost, h.signedExit("tenant-b", "token-b"), exitOf("B0"))
	g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())

	close(stuck)
	g.Expect([]int{<-codes, <-codes}).To(Equal([]int{http.StatusOK, http.StatusOK}))
}

// TestRouteForLog_L3_masksPathsWhateverTheirShape: no more than 8 hex
// digits of a webhook path reach the log, even when the path is malformed.
func TestRouteForLog_L3_masksPathsWhateverTheirShape(t *testing.T) {
	path := imv1.WebhookPath(testNS, "openim", openIMToken)
	hash := strings.TrimPrefix(path, imv1.WebhookPathPrefix)
	for _, p := range []string{
		path,
		path + "/callbackAfterQuitGroupCommand",
		path + "//callbackAfterQuitGroupCommand",
		"/" + path,
		imv1.WebhookPathPrefix + "/" + hash,
		path + "/a/b",
		"/other/" + hash + "x",
		strings.ToUpper(path) + "/x",
	} {
		t.Run(p[len(p)-12:], func(t *testing.T) {
			g := NewWithT(t)
			logged := RouteForLog(p)
			g.Expect(strings.ToLower(logged)).NotTo(ContainSubstring(hash[:9]))
			g.Expect(strings.ToLower(logged)).To(ContainSubstring(hash[:8]))
		})
	}
}

// TestServer_L4_basicAuthNeedsBothKeys: half a basic-auth pair does not
// turn basic auth off; the receiver refuses callbacks until it is fixed.
// A complete pair is checked on both halves.
func TestServer_L4_basicAuthNeedsBothKeys(t *testing.T) {
	quit := imv1.WebhookPath(testNS, "openim-basic", "basic-token") + "/callbackAfterQuitGroupCommand"
	for name, r := range map[string]testsupport.Receiver{
		"password only": {Namespace: testNS, Name: "openim-basic", Provider: imv1.ProviderOpenIM, Token: "basic-token", Password: "s3cret"},
		"username only": {Namespace: testNS, Name: "openim-basic", Provider: imv1.ProviderOpenIM, Token: "basic-token", Username: "im"},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			rcv, secret := r.Objects()
			if r.Password != "" {
				secret.Data[imv1.PasswordKey] = []byte(r.Password)
			}
			h := newHarnessWithClient(t, fakeClient().WithObjects(rcv, secret).Build())
			rec := h.do(http.MethodPost, quit, openIMQuitBody)
			g.Expect(rec.Code).To(Equal(http.StatusServiceUnavailable), rec.Body.String())
		})
	}
	t.Run("empty password with a username", func(t *testing.T) {
		g := NewWithT(t)
		h := newHarness(t)
		rec := h.do(http.MethodPost, quit, openIMQuitBody, "Authorization", "Basic aW06") // im:
		g.Expect(rec.Code).To(Equal(http.StatusUnauthorized), rec.Body.String())
	})
}

// TestServer_L8_longReceiverNameIsALabelValue: a receiver name longer than
// a label value allows still labels its ChatGroups with a valid value.
func TestServer_L8_longReceiverNameIsALabelValue(t *testing.T) {
	g := NewWithT(t)
	name := strings.Repeat("r", 72)
	r := testsupport.Receiver{Name: name, Provider: imv1.ProviderTencent, Token: tencentToken}
	h := newHarnessWithClient(t, fakeClient(r).Build())
	rec := h.do(http.MethodPost, h.signedExit(name, tencentToken), tencentExitBody)
	g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())
	cg := h.group(g, imv1.ProviderTencent, testAppID, "@TGS#2J4SZEAEL")
	g.Expect(validation.IsValidLabelValue(cg.Labels[imv1.ReceiverLabel])).To(BeEmpty())
}

// TestServer_M9_replayCacheFailsClosed: when the replay cache cannot
// remember another signed request, the request is refused (503) instead of
// accepted unchecked; whole seconds expire together after twice the
// window, which frees room again.
func TestServer_M9_replayCacheFailsClosed(t *testing.T) {
	g := NewWithT(t)
	// Room for two entries: 2 / (2 × 60 s) per second.
	h := newHarness(t, func(o *Options) { o.ReplayRate = 2.0 / 120 })
	g.Expect(h.do(http.MethodPost, h.exitURL(), exitOf("G1")).Code).To(Equal(http.StatusOK))
	g.Expect(h.do(http.MethodPost, h.exitURL(), exitOf("G2")).Code).To(Equal(http.StatusOK))
	rec := h.do(http.MethodPost, h.exitURL(), exitOf("G3"))
	g.Expect(rec.Code).To(Equal(http.StatusServiceUnavailable), rec.Body.String())
	var groups imv1.ChatGroupList
	g.Expect(h.client.List(context.Background(), &groups)).To(Succeed())
	g.Expect(groups.Items).To(HaveLen(2), "the refused event was not stored")

	// An exact replay is still recognised while the cache is full.
	g.Expect(h.do(http.MethodPost, h.exitURL(), exitOf("G1")).Code).To(Equal(http.StatusUnauthorized))

	h.now = h.now.Add(121 * time.Second)
	g.Expect(h.do(http.MethodPost, h.exitURL(), exitOf("G3")).Code).To(Equal(http.StatusOK))
}

// TestServer_L10_bodiesInFlightAreBounded: while the maximum number of
// bodies is being read, another authenticated callback gets 503 at once
// instead of adding to the memory a burst of large bodies takes.
func TestServer_L10_bodiesInFlightAreBounded(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, func(o *Options) { o.MaxBodiesInFlight = 1 })
	pr, pw := io.Pipe()
	slow := httptest.NewRequest(http.MethodPost, h.exitURL(), pr)
	slow.RemoteAddr = "127.0.0.1:40000"
	done := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, slow)
		done <- rec.Code
	}()
	g.Eventually(func() int { return BodiesInFlight(h.srv) }, 10*time.Second, 10*time.Millisecond).Should(Equal(1))

	rec := h.do(http.MethodPost, h.exitURL(), exitOf("G2"))
	g.Expect(rec.Code).To(Equal(http.StatusServiceUnavailable), rec.Body.String())

	_, _ = io.WriteString(pw, tencentExitBody)
	g.Expect(pw.Close()).To(Succeed())
	g.Expect(<-done).To(Equal(http.StatusOK))
	g.Expect(h.do(http.MethodPost, h.exitURL(), exitOf("G3")).Code).To(Equal(http.StatusOK))
}

// TestServer_M3_allowedCIDRsWorkBehindTrustedProxies: behind an Ingress
// (the TCP peer, 127.0.0.1 here, is a trusted proxy) allowedCIDRs judge the
// right-most untrusted X-Forwarded-For hop, so the platform's address is
// admitted and a forged hop on the left does not help anyone else.
// Without --trusted-proxies the header is ignored.
func TestServer_M3_allowedCIDRsWorkBehindTrustedProxies(t *testing.T) {
	g := NewWithT(t)
	setCIDRs := func(h *harness) {
		rcv := &imv1.ChatReceiver{}
		g.Expect(h.client.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: "openim"}, rcv)).To(Succeed())
		rcv.Spec.AllowedCIDRs = []string{"203.0.113.0/24"}
		g.Expect(h.client.Update(context.Background(), rcv)).To(Succeed())
	}
	url := imv1.WebhookPath(testNS, "openim", openIMToken) + "/callbackAfterQuitGroupCommand"
	h := newHarness(t, func(o *Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	setCIDRs(h)
	codes := []int{}
	for _, xff := range []string{
		"203.0.113.7",                       // the platform, through the Ingress
		"198.51.100.66",                     // anyone else
		"203.0.113.7, 198.51.100.66",        // anyone else, forging the platform's hop
		"198.51.100.66, 203.0.113.7",        // the platform, behind a proxy of its own
		"127.0.0.5, 203.0.113.7, 127.0.0.9", // trusted hops are skipped
		"not-an-address",                    // unknown client: refused
	} {
		codes = append(codes, h.do(http.MethodPost, url, openIMQuitBody, "X-Forwarded-For", xff).Code)
	}
	g.Expect(codes).To(Equal([]int{200, 403, 403, 200, 200, 403}))

	untrusting := newHarness(t)
	setCIDRs(untrusting)
	g.Expect(untrusting.do(http.MethodPost, url, openIMQuitBody, "X-Forwarded-For", "203.0.113.7").Code).
		To(Equal(http.StatusForbidden))
}

// TestOptions_M3_trustedProxiesFlag: --trusted-proxies takes CIDRs, with
// the parser allowedCIDRs are validated with (I3).
func TestOptions_M3_trustedProxiesFlag(t *testing.T) {
	g := NewWithT(t)
	o := DefaultOptions()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.BindFlags(fs)
	g.Expect(fs.Parse([]string{"--trusted-proxies=10.0.0.0/8, 2001:db8::/32"})).To(Succeed())
	g.Expect(o.TrustedProxies).To(Equal([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}))
	g.Expect(fs.Parse([]string{"--trusted-proxies=10.0.0.1"})).To(MatchError(ContainSubstring("not a CIDR")))
}

// TestServer_M4_headerTokenOnTopOfThePath: with a headerToken in the
// receiver's Secret, the OpenIM path alone is no longer enough: a callback
// needs the X-Chatgroup-Token header too, with basic auth if that is set.
func TestServer_M4_headerTokenOnTopOfThePath(t *testing.T) {
	g := NewWithT(t)
	r := testsupport.Receiver{Namespace: testNS, Name: "openim-header", Provider: imv1.ProviderOpenIM, Token: "header-path-token",
		HeaderToken: "h3ader-t0ken"}
	rcv, secret := r.Objects()
	both := testsupport.Receiver{Namespace: testNS, Name: "openim-both", Provider: imv1.ProviderOpenIM, Token: "both-path-token",
		HeaderToken: "h3ader-t0ken", Username: "im", Password: "s3cret"}
	rcv2, secret2 := both.Objects()
	h := newHarnessWithClient(t, fakeClient().WithObjects(rcv, secret, rcv2, secret2).Build())
	quit := imv1.WebhookPath(testNS, r.Name, r.Token) + "/callbackAfterQuitGroupCommand"

	g.Expect(h.do(http.MethodPost, quit, openIMQuitBody).Code).To(Equal(http.StatusUnauthorized), "the path alone")
	g.Expect(h.do(http.MethodPost, quit, openIMQuitBody, "X-Chatgroup-Token", "h3ader-t0keN").Code).To(Equal(http.StatusUnauthorized))
	g.Expect(h.do(http.MethodPost, quit, openIMQuitBody, "X-Chatgroup-Token", "h3ader-t0ken").Code).To(Equal(http.StatusOK))

	quit2 := imv1.WebhookPath(testNS, both.Name, both.Token) + "/callbackAfterQuitGroupCommand"
	g.Expect(h.do(http.MethodPost, quit2, openIMQuitBody, "X-Chatgroup-Token", "h3ader-t0ken").Code).
		To(Equal(http.StatusUnauthorized), "the header without basic auth")
	g.Expect(h.do(http.MethodPost, quit2, openIMQuitBody, "Authorization", "Basic aW06czNjcmV0").Code). // im:s3cret
														To(Equal(http.StatusUnauthorized), "basic auth without the header")
	g.Expect(h.do(http.MethodPost, quit2, openIMQuitBody, "Authorization", "Basic aW06czNjcmV0", "X-Chatgroup-Token", "h3ader-t0ken").Code).
		To(Equal(http.StatusOK))
}
