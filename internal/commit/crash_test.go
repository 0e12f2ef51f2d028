package commit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/commit"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

// deathProxy passes a committer's requests to the API server until the
// committer first writes a member slice after armed is set; from then on
// it answers nothing, as if the process had been killed at that moment.
type deathProxy struct {
	armed atomic.Bool
	died  chan struct{}
	once  sync.Once
	url   string
}

func startDeathProxy(t *testing.T, env *testsupport.Env) *deathProxy {
	t.Helper()
	upstream, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rest.TransportFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	p := &deathProxy{died: make(chan struct{})}
	forward := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(upstream) }, Transport: rt,
		FlushInterval: -1}
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.armed.Load() && r.Method != http.MethodGet && strings.Contains(r.URL.Path, "/chatgroupmemberslices") {
			p.once.Do(func() { close(p.died) })
		}
		select {
		case <-p.died:
			<-gone // the request never reaches the API server, and nothing answers
			return
		default:
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(gone) })
	p.url = srv.URL
	return p
}

// A manager killed after it stored a commit in the ChatGroup status and
// before it wrote the member slices: the next manager brings the slices up
// to date from the status when it starts, without any new event.
func TestCommit_crashBetweenStatusAndSlicesConverges(t *testing.T) {
	env := testsupport.Start(t)
	proxy := startDeathProxy(t, env)
	viaProxy, err := client.New(&rest.Config{Host: proxy.url}, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	first := commit.New(viaProxy, viaProxy, nil, logr.Discard(), testOptions())
	g := newTestGroup(t, env.Client, first, "crash")
	g.send(imv1.EventCreated, users(0, 60))
	g.check(true)

	// The next join is stored in the status; the manager dies at its
	// first slice write, before it could answer.
	proxy.armed.Store(true)
	g.clock = g.clock.Add(time.Second)
	if _, err := first.Submit(g.target, groupstate.GroupEvent{Provider: imv1.ProviderTencent, AppID: g.target.Spec.AppID,
		GroupID: g.target.Spec.GroupID, Kind: imv1.EventMembersJoined, Members: users(500, 3), EventTime: g.clock,
		Key: "crash-join"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proxy.died:
	case <-time.After(time.Minute):
		t.Fatal("the first manager never wrote a member slice")
	}
	cg, seen := g.listed()
	if cg.Status.MemberCount != 63 || len(seen) != 60 {
		t.Fatalf("after the crash: memberCount %d, %d listed; want the status at 63 and the slices behind at 60",
			cg.Status.MemberCount, len(seen))
	}
	for _, m := range users(500, 3) {
		g.members[m.UserID] = true
	}

	// A new manager starts: it repairs the slices from the status.
	ctx, cancel := context.WithCancel(context.Background())
	second := commit.New(env.Client, env.Client, nil, logr.Discard(), testOptions())
	done := make(chan error, 1)
	go func() { done <- second.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for _, seen := g.listed(); len(seen) != 63; _, seen = g.listed() {
		if time.Now().After(deadline) {
			t.Fatalf("the slices list %d members a minute after the restart, want 63", len(seen))
		}
		time.Sleep(50 * time.Millisecond) // polling the outcome, not waiting for it to happen
	}
	g.check(true)

	// And the group goes on from there.
	g.cm = second
	g.send(imv1.EventMembersLeft, users(0, 2))
	g.check(true)
}
