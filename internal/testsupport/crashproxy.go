package testsupport

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// CrashProxy is a plain-HTTP loopback reverse proxy in front of the
// control plane's API server. It authenticates upstream with the admin
// identity, so a client or a manager process pointed at it needs no
// credentials. Armed, it stops a committer between its two writes: at the
// first write (any method but GET) to a ChatGroupMemberSlice after a
// ChatGroup status write has succeeded, it calls the crash function and
// never forwards that write. From then on it forwards nothing, as if the
// process had died there, until Revive; then it can be armed again.
type CrashProxy struct {
	// URL is the proxy's base URL, http://127.0.0.1:<port>.
	URL string

	forward *httputil.ReverseProxy
	crash   func()

	mu sync.Mutex
	// crashed is closed once the crash of the current arming is over.
	crashed chan struct{}
	// armed: the next status write, then slice write, is the crash point.
	armed, statusWritten bool
	// hold is non-nil while the proxy plays dead; requests wait on it and
	// are then aborted.
	hold chan struct{}
}

var (
	chatGroupStatusPath = regexp.MustCompile(`/chatgroups/[^/]+/status$`)
	memberSlicePath     = regexp.MustCompile(`/chatgroupmemberslices(/|$)`)
)

// StartCrashProxy starts a CrashProxy in front of the API server of cfg
// (an admin rest config). crash, if not nil, is called at the crash
// point, before the slice write would be forwarded. The proxy stops when
// the test ends.
func StartCrashProxy(tb testing.TB, cfg *rest.Config, crash func()) *CrashProxy {
	tb.Helper()
	upstream, err := url.Parse(cfg.Host)
	if err != nil {
		tb.Fatal(err)
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	p := &CrashProxy{crash: crash}
	p.forward = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(upstream) }, Transport: rt,
		FlushInterval: -1, ModifyResponse: p.observe, ErrorHandler: badGateway}
	srv := httptest.NewServer(p)
	// Cleanups run last-in first-out: the held requests are released
	// before the server waits for its handlers to return.
	tb.Cleanup(srv.Close)
	tb.Cleanup(p.Revive)
	p.URL = srv.URL
	return p
}

// Arm makes the next status write followed by a slice write the crash
// point. The channel it returns is closed once the crash function has
// returned there.
func (p *CrashProxy) Arm() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.statusWritten = true, false
	p.crashed = make(chan struct{})
	return p.crashed
}

// Revive forwards requests again, disarmed; the requests held since the
// crash are aborted without having reached the API server.
func (p *CrashProxy) Revive() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hold != nil {
		close(p.hold)
		p.hold = nil
	}
	p.armed, p.statusWritten = false, false
}

// ServeHTTP forwards r, unless the proxy is at or past the crash point.
func (p *CrashProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if hold := p.intercept(r); hold != nil {
		<-hold
		panic(http.ErrAbortHandler) // hang up without an answer
	}
	p.forward.ServeHTTP(w, r)
}

// intercept returns the channel to wait on when r must not be forwarded,
// crashing first when r is the crash point.
func (p *CrashProxy) intercept(r *http.Request) <-chan struct{} {
	p.mu.Lock()
	crash := p.hold == nil && p.armed && p.statusWritten && r.Method != http.MethodGet &&
		memberSlicePath.MatchString(r.URL.Path)
	if crash {
		p.armed = false
		p.hold = make(chan struct{})
	}
	hold, crashed := p.hold, p.crashed
	p.mu.Unlock()
	if crash {
		if p.crash != nil {
			p.crash()
		}
		close(crashed)
	}
	return hold
}

// observe notes a successful ChatGroup status write while armed.
func (p *CrashProxy) observe(resp *http.Response) error {
	req := resp.Request
	if req.Method == http.MethodGet || resp.StatusCode/100 != 2 || !chatGroupStatusPath.MatchString(req.URL.Path) {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.armed {
		p.statusWritten = true
	}
	return nil
}

// badGateway answers 502 when the API server cannot be reached, and
// nothing when the client has gone (a killed manager's watches), without
// the default handler's log line for each.
func badGateway(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	http.Error(w, err.Error(), http.StatusBadGateway)
}

// WriteKubeconfig writes a kubeconfig for the proxy, without credentials
// (the proxy adds them upstream), for a manager process to run with.
func (p *CrashProxy) WriteKubeconfig(path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["proxy"] = &clientcmdapi.Cluster{Server: p.URL}
	cfg.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	cfg.CurrentContext = "proxy"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing the kubeconfig of the crash proxy: %w", err)
	}
	return nil
}
