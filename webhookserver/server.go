// Package webhookserver is the embedded HTTP server that receives Tencent
// Cloud Chat and OpenIM group callbacks and records them in ChatGroup status
// before replying.
package webhookserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// WebhookPathIndex indexes ChatReceivers by their current and previous
// webhook paths, so a request finds its receiver in the cache.
const WebhookPathIndex = ".status.webhookPaths"

// PathPrefix is where every receiver's path starts.
const PathPrefix = imv1.WebhookPathPrefix

// Server receives callbacks. It runs on every replica: it is a manager
// Runnable that does not need leader election, so it starts once the caches
// have synced, and its readiness check fails until it listens.
type Server struct {
	opts      Options
	client    client.Client
	committer *committer
	replay    *replayCache
	codecs    map[imv1.Provider]Codec
	log       logr.Logger
	now       func() time.Time
	listening atomic.Bool
	bound     atomic.Value // the listener's address

	mu       sync.Mutex
	limiters map[types.UID]*receiverLimiter
	touched  map[types.UID]time.Time
}

type receiverLimiter struct {
	limiter *rate.Limiter
	spec    imv1.RateLimit
}

var (
	_ manager.Runnable               = &Server{}
	_ manager.LeaderElectionRunnable = &Server{}
)

// New builds a callback server that reads receivers and Secrets through the
// manager's cache and writes ChatGroups through its client.
func New(mgr manager.Manager, opts Options) *Server {
	log := ctrl.Log.WithName("webhookserver")
	return newServer(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetEventRecorder("chatgroup-callbacks"), log, opts)
}

func newServer(c client.Client, reader client.Reader, recorder events.EventRecorder, log logr.Logger, opts Options) *Server {
	return &Server{
		opts:      opts,
		client:    c,
		committer: newCommitter(c, reader, recorder, log, opts),
		replay:    newReplayCache(opts.SignWindow, 100000),
		codecs: map[imv1.Provider]Codec{
			imv1.ProviderTencent: TencentCodec{},
			imv1.ProviderOpenIM:  OpenIMCodec{},
		},
		log:      log,
		now:      time.Now,
		limiters: map[types.UID]*receiverLimiter{},
		touched:  map[types.UID]time.Time{},
	}
}

// SetupWithManager registers the receiver path index, the server itself and
// its readiness check.
func (s *Server) SetupWithManager(mgr manager.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &imv1.ChatReceiver{}, WebhookPathIndex, receiverPaths); err != nil {
		return fmt.Errorf("indexing ChatReceivers by webhook path: %w", err)
	}
	if err := mgr.AddReadyzCheck("callbacks", s.ReadyCheck); err != nil {
		return fmt.Errorf("adding callback server readiness check: %w", err)
	}
	return mgr.Add(s)
}

// receiverPaths is the WebhookPathIndex function.
func receiverPaths(obj client.Object) []string {
	rcv := obj.(*imv1.ChatReceiver)
	var paths []string
	for _, p := range []string{rcv.Status.WebhookPath, rcv.Status.PreviousWebhookPath} {
		if p != "" {
			paths = append(paths, p)
		}
	}
	return paths
}

// NeedLeaderElection is false: every replica serves callbacks.
func (s *Server) NeedLeaderElection() bool { return false }

// ReadyCheck fails until the server listens (which is after the caches
// synced).
func (s *Server) ReadyCheck(_ *http.Request) error {
	if !s.listening.Load() {
		return errors.New("callback server is not listening yet")
	}
	return nil
}

// Start serves callbacks until ctx ends, then stops accepting requests and
// gives queued events a last chance to be stored.
func (s *Server) Start(ctx context.Context) error {
	commitCtx, cancelCommits := context.WithCancel(context.Background())
	defer cancelCommits()
	s.committer.ctx = commitCtx

	srv := &http.Server{
		Addr:              s.opts.Addr,
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      20 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("listening for callbacks on %s: %w", s.opts.Addr, err)
	}
	s.log.Info("Serving callbacks", "address", ln.Addr().String())
	s.bound.Store(ln.Addr().String())
	s.listening.Store(true)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		s.listening.Store(false)
		return fmt.Errorf("serving callbacks: %w", err)
	case <-ctx.Done():
	}
	s.listening.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		s.log.Error(err, "Callback server did not shut down cleanly")
	}
	if left := s.committer.wait(5 * time.Second); left > 0 {
		s.log.Info("Stopping with events still queued; they are dropped and counted", "events", left)
	}
	return nil
}

// BoundAddr returns the address the server listens on (useful with port
// 0), or "" before it listens.
func (s *Server) BoundAddr() string {
	addr, _ := s.bound.Load().(string)
	return addr
}

// commandLabel is the command as a metric label: the commands the codecs
// know, and "other" for anything else, so labels stay bounded.
func commandLabel(command string) string {
	if _, ok := tencentKinds[command]; ok {
		return command
	}
	if _, ok := openIMKinds[openIMCommand(command)]; ok {
		return openIMCommand(command)
	}
	return "other"
}

// exchange is one request being answered.
type exchange struct {
	w        http.ResponseWriter
	r        *http.Request
	start    time.Time
	log      logr.Logger
	codec    Codec
	provider string
	command  string
}

func (x *exchange) reply(status int, result string, o Outcome) {
	h := x.w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	switch status {
	case http.StatusMethodNotAllowed:
		h.Set("Allow", http.MethodPost)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		h.Set("Retry-After", "1")
	}
	x.w.WriteHeader(status)
	_, _ = x.w.Write(x.codec.Reply(o))

	callbacksTotal.WithLabelValues(x.provider, commandLabel(x.command), result).Inc()
	replySeconds.WithLabelValues(x.provider, strconv.Itoa(status/100)+"xx").Observe(time.Since(x.start).Seconds())
}

// fail answers with the provider's failure body and logs why.
func (x *exchange) fail(status int, result string, err error) {
	x.log.Info("Rejected callback", "status", status, "result", result, "reason", err.Error())
	x.reply(status, result, Outcome{Code: status, Message: err.Error()})
}

// ServeHTTP handles one callback: route, authenticate, decode, store,
// reply.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{w: w, r: r, start: time.Now(), command: r.URL.Query().Get("CallbackCommand"),
		log: s.log.WithValues("remote", r.RemoteAddr, "path", routeForLog(r.URL.Path))}
	// Until the receiver is known, guess the provider from the request
	// shape, so even a 404 comes in a body the sender can parse.
	x.codec, x.provider = s.codecs[imv1.ProviderOpenIM], "unknown"
	if x.command != "" {
		x.codec = s.codecs[imv1.ProviderTencent]
	}

	base, suffix, ok := splitPath(r.URL.Path)
	if !ok {
		x.fail(http.StatusNotFound, "not_found", errors.New("no receiver at this path"))
		return
	}
	rcv, err := s.findReceiver(r.Context(), base)
	if err != nil {
		x.fail(http.StatusServiceUnavailable, "unavailable", err)
		return
	}
	if rcv == nil {
		x.fail(http.StatusNotFound, "not_found", errors.New("no receiver at this path"))
		return
	}
	x.codec, x.provider = s.codecs[rcv.Spec.Provider], string(rcv.Spec.Provider)
	x.log = x.log.WithValues("chatReceiver", klog.KObj(rcv))
	if rcv.Spec.Provider == imv1.ProviderOpenIM {
		x.command = suffix
	}
	if (rcv.Spec.Provider == imv1.ProviderTencent) != (suffix == "") {
		x.fail(http.StatusNotFound, "not_found", errors.New("no receiver at this path"))
		return
	}
	if r.Method != http.MethodPost {
		x.fail(http.StatusMethodNotAllowed, "method_not_allowed", fmt.Errorf("method %s not allowed, use POST", r.Method))
		return
	}
	if !sourceAllowed(rcv.Spec.AllowedCIDRs, r.RemoteAddr) {
		x.fail(http.StatusForbidden, "forbidden", errors.New("source address not in allowedCIDRs"))
		return
	}
	if !s.limiter(rcv).Allow() {
		x.fail(http.StatusTooManyRequests, "rate_limited", errors.New("rate limit exceeded"))
		return
	}
	if !s.authenticate(x, rcv, base) {
		return
	}
	q := r.URL.Query()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			x.fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("body larger than %d bytes", s.opts.MaxBodyBytes))
			return
		}
		x.fail(http.StatusBadRequest, "bad_request", fmt.Errorf("reading body: %w", err))
		return
	}
	ev, err := x.codec.Decode(x.command, body)
	if errors.Is(err, ErrUnknownCommand) {
		x.log.V(1).Info("Ignored callback", "command", x.command)
		x.reply(http.StatusOK, "ignored", Outcome{OK: true, Message: "ignored: not a group event this operator handles"})
		return
	}
	if err != nil {
		x.fail(http.StatusBadRequest, "bad_request", err)
		return
	}
	ev.AppID = rcv.Spec.AppID
	ev.Key = eventKey(rcv.Spec.Provider, ev.AppID, x.command, r.Header.Get("operationID"), body)
	replayID := q.Get("Sign") + "/" + ev.Key
	if rcv.Spec.Provider == imv1.ProviderTencent && s.replay.seenBefore(replayID, s.now()) {
		x.fail(http.StatusUnauthorized, "replayed", errReplay)
		return
	}
	if ev.EventTime.IsZero() {
		// OpenIM sends no event time: arrival order is the only order.
		ev.EventTime = s.now()
	}
	ev.EventTime = ev.EventTime.UTC().Truncate(time.Microsecond)

	res, err := s.store(r.Context(), rcv, ev)
	if err != nil {
		status, result := http.StatusServiceUnavailable, "unavailable"
		var perm permanentError
		if errors.As(err, &perm) {
			status, result = http.StatusInternalServerError, "error"
		}
		x.fail(status, result, err)
		return
	}
	if rcv.Spec.Provider == imv1.ProviderTencent {
		s.replay.remember(replayID, s.now())
	}
	s.touchReceiver(rcv)
	x.log.V(1).Info("Stored callback", "command", x.command, "groupID", ev.GroupID, "result", res, "key", ev.Key)
	x.reply(http.StatusOK, string(res), Outcome{OK: true, Message: string(res)})
}

// authenticate checks the path token, the Tencent SdkAppid and Sign, or the
// OpenIM basic auth. It answers the request itself when the check fails.
func (s *Server) authenticate(x *exchange, rcv *imv1.ChatReceiver, base string) bool {
	creds, err := s.credentials(x.r.Context(), rcv)
	if err != nil {
		x.fail(http.StatusServiceUnavailable, "unavailable", err)
		return false
	}
	// The path is derived from the token: a path from a token no longer in
	// the Secret is unknown even before the index catches up.
	tokenIdx := -1
	for i, token := range creds.tokens {
		if imv1.WebhookPath(rcv.Namespace, rcv.Name, token) == base {
			tokenIdx = i
		}
	}
	if tokenIdx < 0 {
		x.fail(http.StatusNotFound, "not_found", errors.New("no receiver at this path"))
		return false
	}
	q := x.r.URL.Query()
	if rcv.Spec.Provider == imv1.ProviderTencent {
		if q.Get("SdkAppid") != rcv.Spec.AppID {
			x.fail(http.StatusForbidden, "forbidden", fmt.Errorf("SdkAppid %q does not match the receiver's appID", q.Get("SdkAppid")))
			return false
		}
		idx, err := verifyTencentSign(creds.tokens, q.Get("Sign"), q.Get("RequestTime"), s.now(), s.opts.SignWindow)
		if err != nil {
			x.fail(http.StatusUnauthorized, "unauthorized", err)
			return false
		}
		tokenIdx = idx
	} else if creds.username != "" {
		user, pass, ok := x.r.BasicAuth()
		if !ok || !constantTimeEqual(user, creds.username) || !constantTimeEqual(pass, creds.password) {
			x.fail(http.StatusUnauthorized, "unauthorized", errors.New("basic auth required"))
			return false
		}
	}
	tokenMatches.WithLabelValues(x.provider, [...]string{"current", "previous"}[min(tokenIdx, 1)]).Inc()
	return true
}

// store queues the event for its ChatGroup and waits for the commit, at most
// the commit budget.
func (s *Server) store(ctx context.Context, rcv *imv1.ChatReceiver, ev GroupEvent) (Result, error) {
	spec := imv1.ChatGroupSpec{Provider: ev.Provider, AppID: ev.AppID, GroupID: ev.GroupID}
	req := &commitRequest{
		ev: ev,
		target: groupTarget{
			Key:      types.NamespacedName{Namespace: rcv.Namespace, Name: imv1.ChatGroupName(spec.Provider, spec.AppID, spec.GroupID)},
			Spec:     spec,
			Labels:   groupLabels(rcv),
			Receiver: types.NamespacedName{Namespace: rcv.Namespace, Name: rcv.Name},
		},
		done: make(chan commitResult, 1),
	}
	if err := s.committer.submit(req); err != nil {
		return "", err
	}
	budget := time.NewTimer(s.opts.CommitBudget)
	defer budget.Stop()
	select {
	case res := <-req.done:
		return res.result, res.err
	case <-budget.C:
		return "", errNotStored
	case <-ctx.Done():
		return "", errNotStored
	}
}

func groupLabels(rcv *imv1.ChatReceiver) map[string]string {
	labels := make(map[string]string, len(rcv.Spec.GroupLabels)+3)
	for k, v := range rcv.Spec.GroupLabels {
		labels[k] = v
	}
	labels[imv1.ProviderLabel] = strings.ToLower(string(rcv.Spec.Provider))
	labels[imv1.ReceiverLabel] = rcv.Name
	if len(validation.IsValidLabelValue(rcv.Spec.AppID)) == 0 && rcv.Spec.AppID != "" {
		labels[imv1.AppIDLabel] = rcv.Spec.AppID
	}
	return labels
}

// findReceiver looks the path up in the cache index.
func (s *Server) findReceiver(ctx context.Context, path string) (*imv1.ChatReceiver, error) {
	var list imv1.ChatReceiverList
	if err := s.client.List(ctx, &list, client.MatchingFields{WebhookPathIndex: path}); err != nil {
		return nil, fmt.Errorf("looking up receiver: %w", err)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	return &list.Items[0], nil
}

type credentials struct {
	tokens             []string // current first
	username, password string
}

func (s *Server) credentials(ctx context.Context, rcv *imv1.ChatReceiver) (credentials, error) {
	var secret corev1.Secret
	key := types.NamespacedName{Namespace: rcv.Namespace, Name: rcv.Spec.SecretRef.Name}
	if err := s.client.Get(ctx, key, &secret); err != nil {
		return credentials{}, fmt.Errorf("reading the receiver's Secret %s: %w", key.Name, err)
	}
	var c credentials
	for _, k := range []string{imv1.TokenKey, imv1.PreviousTokenKey} {
		if t := string(secret.Data[k]); t != "" {
			c.tokens = append(c.tokens, t)
		}
	}
	if len(c.tokens) == 0 {
		return credentials{}, fmt.Errorf("the receiver's Secret %s has no %q", key.Name, imv1.TokenKey)
	}
	c.username, c.password = string(secret.Data[imv1.UsernameKey]), string(secret.Data[imv1.PasswordKey])
	return c, nil
}

func (s *Server) limiter(rcv *imv1.ChatReceiver) *rate.Limiter {
	spec := imv1.RateLimit{RequestsPerSecond: 2000, Burst: 4000}
	if rcv.Spec.RateLimit != nil {
		spec = *rcv.Spec.RateLimit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.limiters[rcv.UID]
	if !ok || l.spec != spec {
		l = &receiverLimiter{limiter: rate.NewLimiter(rate.Limit(spec.RequestsPerSecond), int(spec.Burst)), spec: spec}
		s.limiters[rcv.UID] = l
	}
	return l.limiter
}

// touchReceiver records status.lastEventTime, at most once every 30 s per
// receiver and replica, in the background.
func (s *Server) touchReceiver(rcv *imv1.ChatReceiver) {
	now := s.now()
	s.mu.Lock()
	if now.Sub(s.touched[rcv.UID]) < 30*time.Second {
		s.mu.Unlock()
		return
	}
	s.touched[rcv.UID] = now
	s.mu.Unlock()

	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		base := rcv.DeepCopy()
		patched := rcv.DeepCopy()
		patched.Status.LastEventTime = &metav1.Time{Time: now}
		if err := s.client.Status().Patch(ctx, patched, client.MergeFrom(base)); err != nil {
			s.log.V(1).Info("Could not record lastEventTime", "chatReceiver", klog.KObj(rcv), "error", err.Error())
		}
	}()
}

// splitPath splits /callbacks/<hash>[/<command>] into the receiver path and
// the command suffix.
func splitPath(p string) (base, suffix string, ok bool) {
	rest, found := strings.CutPrefix(p, PathPrefix)
	if !found {
		return "", "", false
	}
	hash, suffix, _ := strings.Cut(rest, "/")
	if len(hash) != 64 || strings.Contains(suffix, "/") {
		return "", "", false
	}
	return PathPrefix + hash, suffix, true
}

// routeForLog keeps the secret part of a path out of logs.
func routeForLog(p string) string {
	base, suffix, ok := splitPath(p)
	if !ok {
		if len(p) > 64 {
			p = p[:64] + "..."
		}
		return p
	}
	masked := base[:len(PathPrefix)+8] + "..."
	if suffix != "" {
		masked += "/" + suffix
	}
	return masked
}
