// Package webhookserver is the embedded HTTP server that receives IM group
// callbacks and records them in ChatGroup status before replying. It is
// HTTP only: the providers' wire formats are in internal/provider, the
// group state machine in internal/groupstate and the writes in
// internal/commit.
package webhookserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/commit"
	"chatgroup.dev/chatgroup-operator/internal/secrets"
)

// WebhookPathIndex indexes ChatReceivers by their current and previous
// webhook paths, so a request finds its receiver in the cache.
const WebhookPathIndex = ".status.webhookPaths"

// Server receives callbacks. It runs on every replica: it is a manager
// Runnable that does not need leader election, so it starts once the caches
// have synced, and its readiness check fails until it listens.
type Server struct {
	opts      Options
	client    client.Client
	committer *commit.Committer
	// secrets reads receiver Secrets from the API server with a short
	// cache: the operator does not watch Secrets (security audit H1).
	secrets *secrets.Reader
	replay  *replayCache
	// bodies holds one token per callback body being read and decoded.
	bodies chan struct{}
	// failures is each source's budget of failed authentications.
	failures  *failures
	log       logr.Logger
	now       func() time.Time
	listening atomic.Bool
	bound     atomic.Value // the listener's address

	// background bounds the work a request leaves behind (recording
	// lastEventTime); Start cancels it and waits for the work on the way
	// out.
	background       context.Context
	stopBackground   context.CancelFunc
	backgroundWrites sync.WaitGroup

	mu          sync.Mutex
	limiters    map[types.UID]*receiverLimiter
	pending     map[types.NamespacedName]int
	lastRecords map[types.UID]time.Time
}

var (
	_ manager.Runnable               = &Server{}
	_ manager.LeaderElectionRunnable = &Server{}
)

// New builds a callback server that reads receivers through the manager's
// cache, Secrets one by one from the API server (internal/secrets), and
// writes ChatGroups through its client.
func New(mgr manager.Manager, opts Options) *Server {
	log := ctrl.Log.WithName("webhookserver")
	return newServer(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetEventRecorder("chatgroup-callbacks"), log, opts)
}

func newServer(c client.Client, reader client.Reader, recorder events.EventRecorder, log logr.Logger, opts Options) *Server {
	background, stop := context.WithCancel(context.Background())
	return &Server{
		opts:           opts,
		client:         c,
		committer:      commit.New(c, reader, recorder, log, opts.commitOptions()),
		secrets:        secrets.NewReader(reader, secrets.DefaultTTL),
		replay:         newReplayCache(opts.SignWindow, opts.ReplayRate),
		failures:       newFailures(opts.FailedAuthRate, opts.FailedAuthBurst),
		bodies:         make(chan struct{}, max(1, opts.MaxBodiesInFlight)),
		log:            log,
		now:            time.Now,
		background:     background,
		stopBackground: stop,
		limiters:       map[types.UID]*receiverLimiter{},
		pending:        map[types.NamespacedName]int{},
		lastRecords:    map[types.UID]time.Time{},
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

// Committer is the server's committer, which resync stores its events
// through too, so that callbacks and repairs of a group are merged and
// ordered by one queue.
func (s *Server) Committer() *commit.Committer { return s.committer }

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
// gives queued events a last chance to be stored: the committer is stopped
// only once no request can submit an event any more.
func (s *Server) Start(ctx context.Context) error {
	commitCtx, stopCommits := context.WithCancel(context.Background())
	committed := make(chan error, 1)
	go func() { committed <- s.committer.Start(commitCtx) }()
	defer func() {
		stopCommits()
		if err := <-committed; err != nil {
			s.log.Error(err, "Committer stopped with an error")
		}
		s.stopBackground()
		s.backgroundWrites.Wait()
	}()

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
	defer s.listening.Store(false)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serving callbacks: %w", err)
	case <-ctx.Done():
	}
	s.listening.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		s.log.Error(err, "Callback server did not shut down cleanly")
	}
	return nil
}

// BoundAddr returns the address the server listens on (useful with port
// 0), or "" before it listens.
func (s *Server) BoundAddr() string {
	addr, _ := s.bound.Load().(string)
	return addr
}
