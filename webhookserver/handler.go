package webhookserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/clientaddr"
	"chatgroup.dev/chatgroup-operator/internal/commit"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
	"chatgroup.dev/chatgroup-operator/internal/provider/registry"
)

// errNotStored means the event missed its commit budget; the committer
// still retries it.
var errNotStored = errors.New("event not stored within the commit budget; it is being retried")

var errNoReceiver = errors.New("no receiver at this path")

// call is one callback being answered. Each step of ServeHTTP fills it in.
type call struct {
	w     http.ResponseWriter
	r     *http.Request
	start time.Time
	log   logr.Logger
	prov  provider.Provider
	// label is the provider as a metric label: "unknown" until the
	// receiver is known.
	label   string
	command string
	// base is the receiver's path, without the command suffix.
	base string
	rcv  *imv1.ChatReceiver
	auth provider.Auth
	// client is the address the request came from (see
	// clientaddr.Client); not valid when it is unknown.
	client netip.Addr
}

// ServeHTTP handles one callback: route, admit, authenticate, decode,
// store, reply. Each step answers the request itself when it fails.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := s.newCall(w, r)
	if !s.route(c) || !s.admit(c) || !s.authenticate(c) || !s.rateLimit(c) {
		return
	}
	ev, ok := s.decode(c)
	if !ok {
		return
	}
	res, ok := s.store(c, ev)
	if !ok {
		return
	}
	c.reply(http.StatusOK, string(res), provider.Outcome{OK: true, Message: string(res)})
}

// newCall starts a call. Until the receiver is known, the provider is
// guessed from the request's shape, so even a 404 comes in a body the
// sender can parse.
func (s *Server) newCall(w http.ResponseWriter, r *http.Request) *call {
	client, _ := clientaddr.Client(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.opts.TrustedProxies)
	c := &call{w: w, r: r, start: time.Now(), prov: registry.Guess(r), label: "unknown", client: client,
		log: s.log.WithValues("remote", r.RemoteAddr, "client", client.String(), "path", routeForLog(r.URL.Path))}
	c.command, _ = c.prov.Command(r, "")
	return c
}

// route finds the receiver of the path and the callback's command.
func (s *Server) route(c *call) bool {
	base, suffix, ok := splitPath(c.r.URL.Path)
	if !ok {
		return c.fail(http.StatusNotFound, "not_found", errNoReceiver)
	}
	rcv, err := s.findReceiver(c.r.Context(), base)
	if err != nil {
		return c.failPrivately(http.StatusServiceUnavailable, "unavailable", err)
	}
	if rcv == nil {
		return c.fail(http.StatusNotFound, "not_found", errNoReceiver)
	}
	p, ok := registry.Get(rcv.Spec.Provider)
	if !ok {
		return c.fail(http.StatusNotFound, "not_found", fmt.Errorf("provider %q is not served", rcv.Spec.Provider))
	}
	c.prov, c.label, c.base, c.rcv = p, string(p.Name()), base, rcv
	c.log = c.log.WithValues("chatReceiver", klog.KObj(rcv))
	c.command, ok = p.Command(c.r, suffix)
	if !ok {
		return c.fail(http.StatusNotFound, "not_found", errNoReceiver)
	}
	return true
}

// admit checks the method and the source address.
func (s *Server) admit(c *call) bool {
	switch {
	case c.r.Method != http.MethodPost:
		return c.fail(http.StatusMethodNotAllowed, "method_not_allowed", fmt.Errorf("method %s not allowed, use POST", c.r.Method))
	case !sourceAllowed(c.rcv.Spec.AllowedCIDRs, c.client):
		return c.fail(http.StatusForbidden, "forbidden", errors.New("source address not in allowedCIDRs"))
	}
	return true
}

// rateLimit spends one of the receiver's requests. Only authenticated
// requests count, so that unsigned requests to a known path cannot starve
// the platform's own callbacks (security audit M5).
func (s *Server) rateLimit(c *call) bool {
	if !s.limiter(c.rcv).AllowN(s.now(), 1) {
		return c.fail(http.StatusTooManyRequests, "rate_limited", errors.New("rate limit exceeded"))
	}
	return true
}

// authenticate checks that the path comes from one of the receiver's
// tokens, then the provider's credentials (a signature, basic auth).
func (s *Server) authenticate(c *call) bool {
	creds, err := s.credentials(c.r.Context(), c.rcv)
	if err != nil {
		return c.failPrivately(http.StatusServiceUnavailable, "unavailable", err)
	}
	// The path is derived from the token: a path from a token no longer in
	// the Secret is unknown even before the index catches up.
	pathToken := -1
	for i, token := range creds.Tokens {
		if imv1.WebhookPath(c.rcv.Namespace, c.rcv.Name, token) == c.base {
			pathToken = i
		}
	}
	if pathToken < 0 {
		return s.authFailed(c, http.StatusNotFound, "not_found", errNoReceiver)
	}
	c.auth, err = c.prov.Authenticate(c.r, creds, s.now(), s.opts.SignWindow)
	if err != nil {
		status, result := http.StatusUnauthorized, "unauthorized"
		var authErr *provider.AuthError
		if errors.As(err, &authErr) {
			status, result = authErr.Status, authErr.Result
		}
		return s.authFailed(c, status, result, err)
	}
	if c.auth.Token < 0 {
		c.auth.Token = pathToken
	}
	tokenMatches.WithLabelValues(c.label, [...]string{"current", "previous"}[min(c.auth.Token, 1)]).Inc()
	return true
}

// decode reads the body and decodes it into the event, with its dedupe
// key and event time. At most MaxBodiesInFlight bodies are read at once.
func (s *Server) decode(c *call) (groupstate.GroupEvent, bool) {
	select {
	case s.bodies <- struct{}{}:
		defer func() { <-s.bodies }()
	default:
		return groupstate.GroupEvent{}, c.fail(http.StatusServiceUnavailable, "busy", errors.New("too many callbacks being read; retry later"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return groupstate.GroupEvent{}, c.fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("body larger than %d bytes", s.opts.MaxBodyBytes))
		}
		return groupstate.GroupEvent{}, c.fail(http.StatusBadRequest, "bad_request", fmt.Errorf("reading body: %w", err))
	}
	ev, err := c.prov.Decode(c.command, body)
	if errors.Is(err, provider.ErrUnknownCommand) {
		c.log.V(1).Info("Ignored callback", "command", c.command)
		c.reply(http.StatusOK, "ignored", provider.Outcome{OK: true, Message: "ignored: not a group event this operator handles"})
		return groupstate.GroupEvent{}, false
	}
	if err != nil {
		return groupstate.GroupEvent{}, c.fail(http.StatusBadRequest, "bad_request", err)
	}
	ev.AppID = c.rcv.Spec.AppID
	now := s.now()
	switch {
	case ev.EventTime.IsZero():
		// The platform sent no event time (OpenIM never does): arrival
		// order is the only order.
		ev.EventTime, ev.Untimed = now, true
	case ev.EventTime.After(now.Add(s.opts.MaxClockSkew)):
		// One far-future time would win every comparison for ever.
		return groupstate.GroupEvent{}, c.fail(http.StatusBadRequest, "bad_request",
			fmt.Errorf("event time %s is more than %s ahead of the server clock", ev.EventTime.UTC().Format(time.RFC3339), s.opts.MaxClockSkew))
	}
	ev.EventTime = ev.EventTime.UTC().Truncate(time.Microsecond)
	ev.Key = ev.CanonicalKey(c.prov.RequestID(c.r))
	return ev, true
}

// store refuses a replay, then hands the event to the committer and waits
// for it to be stored, at most the commit budget. The committer goes on
// retrying an event that missed the budget.
func (s *Server) store(c *call, ev groupstate.GroupEvent) (groupstate.ApplyResult, bool) {
	replayID := ""
	if c.auth.ReplayID != "" {
		replayID = c.auth.ReplayID + "/" + ev.Key
		switch err := s.replay.reserve(replayID, s.now()); {
		case errors.Is(err, errReplay):
			return "", c.fail(http.StatusUnauthorized, "replayed", err)
		case err != nil:
			return "", c.fail(http.StatusServiceUnavailable, "replay_cache_full", err)
		}
	}
	res, err := s.commit(c.r.Context(), c.rcv, ev)
	if err != nil {
		if replayID != "" {
			s.replay.release(replayID)
		}
		status, result := http.StatusServiceUnavailable, "unavailable"
		var perm commit.PermanentError
		switch {
		case errors.As(err, &perm):
			status, result = http.StatusInternalServerError, "error"
		case errors.Is(err, errGroupLimit):
			status, result = http.StatusTooManyRequests, "group_limit"
		case errors.Is(err, errReceiverBusy):
			status, result = http.StatusTooManyRequests, "receiver_busy"
		}
		return "", c.fail(status, result, err)
	}
	s.recordLastEventTime(c.rcv)
	c.log.V(1).Info("Stored callback", "command", ev.Command, "groupID", ev.GroupID, "result", res, "key", ev.Key)
	return res, true
}

// commit submits the event for its ChatGroup and waits for the result.
func (s *Server) commit(ctx context.Context, rcv *imv1.ChatReceiver, ev groupstate.GroupEvent) (groupstate.ApplyResult, error) {
	spec := imv1.ChatGroupSpec{Provider: ev.Provider, AppID: ev.AppID, GroupID: ev.GroupID}
	target := commit.Target{
		Key:      types.NamespacedName{Namespace: rcv.Namespace, Name: imv1.ChatGroupName(spec.Provider, spec.AppID, spec.GroupID)},
		Spec:     spec,
		Labels:   groupLabels(rcv),
		Receiver: types.NamespacedName{Namespace: rcv.Namespace, Name: rcv.Name},
	}
	if err := s.checkGroupLimit(ctx, target); err != nil {
		return "", err
	}
	done, err := s.submit(target, ev)
	if err != nil {
		return "", err
	}
	budget := time.NewTimer(s.opts.CommitBudget)
	defer budget.Stop()
	select {
	case res := <-done:
		return res.Result, res.Err
	case <-budget.C:
		return "", errNotStored
	case <-ctx.Done():
		return "", errNotStored
	}
}

// reply answers with the provider's body and counts the callback.
func (c *call) reply(status int, result string, o provider.Outcome) {
	h := c.w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	switch status {
	case http.StatusMethodNotAllowed:
		h.Set("Allow", http.MethodPost)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		h.Set("Retry-After", "1")
	}
	c.w.WriteHeader(status)
	_, _ = c.w.Write(c.prov.Reply(o))

	callbacksTotal.WithLabelValues(c.label, registry.CommandLabel(c.command), result).Inc()
	replySeconds.WithLabelValues(c.label, strconv.Itoa(status/100)+"xx").Observe(time.Since(c.start).Seconds())
}

// fail answers with the provider's failure body and logs why. It returns
// false, so that a step can end with it.
func (c *call) fail(status int, result string, err error) bool {
	c.log.Info("Rejected callback", "status", status, "result", result, "reason", err.Error())
	c.reply(status, result, provider.Outcome{Code: status, Message: err.Error()})
	return false
}

// failPrivately is fail for errors that name internals (a Secret, the
// operator's ServiceAccount): the caller, who may not have authenticated
// yet, gets only the status text; the log keeps the detail.
func (c *call) failPrivately(status int, result string, err error) bool {
	c.log.Info("Rejected callback", "status", status, "result", result, "reason", err.Error())
	c.reply(status, result, provider.Outcome{Code: status, Message: http.StatusText(status)})
	return false
}

// authFailed answers a request that failed authentication, charging its
// source's budget of failures; past the budget the answer is 429 and
// nothing is logged.
func (s *Server) authFailed(c *call, status int, result string, err error) bool {
	if s.failures.charge(c.client, s.now()) {
		return c.fail(status, result, err)
	}
	c.reply(http.StatusTooManyRequests, "auth_rate_limited",
		provider.Outcome{Code: http.StatusTooManyRequests, Message: "too many failed authentications from this source"})
	return false
}
