package resync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/provider"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
)

// Options configure the resync loop.
type Options struct {
	// Tick is how often the loop looks for receivers that are due and for
	// resync requests.
	Tick time.Duration
	// Concurrency bounds the batches of groups read in parallel per pass.
	Concurrency int
	// MinBackoff is the first wait after a failed pass; it doubles up to
	// the receiver's interval.
	MinBackoff time.Duration
	// NewClient builds a receiver's REST client; nil uses the providers'
	// clients. Tests set it to shorten timeouts.
	NewClient func(rcv *imv1.ChatReceiver, key string) (provider.RESTClient, error)
}

// DefaultOptions are the loop's defaults.
func DefaultOptions() Options {
	return Options{Tick: 2 * time.Second, Concurrency: 4, MinBackoff: 10 * time.Second}
}

// BindFlags registers the options as command-line flags.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.Tick, "resync-tick", o.Tick,
		"How often the resync loop looks for receivers that are due and for resync-requested-at annotations.")
	fs.IntVar(&o.Concurrency, "resync-concurrency", o.Concurrency,
		"Batches of groups a resync pass reads from a provider in parallel.")
	fs.DurationVar(&o.MinBackoff, "resync-min-backoff", o.MinBackoff,
		"First wait before a failed resync pass is retried; it doubles up to the receiver's interval.")
}

// DefaultInterval is the time between passes when spec.resync.interval is
// unset.
const DefaultInterval = 10 * time.Minute

// Runner is the resync loop: a manager runnable that runs on the elected
// leader only. Every Tick it runs a pass for each receiver whose interval
// has passed, whose resync-requested-at annotation is new, or whose failed
// pass has waited out its backoff; and a pass over the ChatGroups whose
// own annotation is new.
type Runner struct {
	client client.Client
	reader client.Reader
	syncer *Syncer
	opts   Options
	log    logr.Logger

	mu      sync.Mutex
	clients map[types.UID]cachedClient
	retry   map[types.UID]backoff
	// handled remembers, per receiver and ChatGroup, the request value and
	// time of the last pass this loop ran, so that a cache that has not
	// seen the pass's own status.lastSync yet does not run it again.
	handled map[types.UID]handledPass
}

type handledPass struct {
	requested string
	at        time.Time
}

type cachedClient struct {
	fingerprint string
	client      provider.RESTClient
}

type backoff struct {
	next time.Time
	wait time.Duration
}

var (
	_ manager.Runnable               = &Runner{}
	_ manager.LeaderElectionRunnable = &Runner{}
)

// SetupWithManager adds the resync loop to the manager. It stores events
// through committer, the callback server's.
func SetupWithManager(mgr ctrl.Manager, committer Submitter, opts Options) error {
	d := DefaultOptions()
	if opts.Tick <= 0 {
		opts.Tick = d.Tick
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = d.Concurrency
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = d.MinBackoff
	}
	log := ctrl.Log.WithName("resync")
	r := &Runner{
		client: mgr.GetClient(),
		reader: mgr.GetAPIReader(),
		syncer: &Syncer{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Committer: committer, Recorder: mgr.GetEventRecorder("chatgroup-resync"),
			Log: log, Concurrency: opts.Concurrency, CommitTimeout: 30 * time.Second},
		opts:    opts,
		log:     log,
		clients: map[types.UID]cachedClient{},
		retry:   map[types.UID]backoff{},
		handled: map[types.UID]handledPass{},
	}
	return mgr.Add(r)
}

// NeedLeaderElection is true: one replica resyncs.
func (r *Runner) NeedLeaderElection() bool { return true }

// Start runs the loop until ctx ends.
func (r *Runner) Start(ctx context.Context) error {
	t := time.NewTicker(r.opts.Tick)
	defer t.Stop()
	for {
		r.tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// tick runs the passes that are due.
func (r *Runner) tick(ctx context.Context) {
	var rcvs imv1.ChatReceiverList
	if err := r.client.List(ctx, &rcvs); err != nil {
		r.log.Error(err, "Cannot list ChatReceivers")
		return
	}
	requested, err := r.groupRequests(ctx)
	if err != nil {
		r.log.Error(err, "Cannot list ChatGroups")
	}
	for i := range rcvs.Items {
		rcv := &rcvs.Items[i]
		if rcv.Spec.Resync == nil || ctx.Err() != nil {
			continue
		}
		key := types.NamespacedName{Namespace: rcv.Namespace, Name: rcv.Name}
		switch {
		case r.due(rcv):
			r.markHandled(rcv.UID, rcv.Annotations[imv1.ResyncRequestedAnnotation])
			r.run(ctx, rcv, nil, rcv.Annotations[imv1.ResyncRequestedAnnotation])
		case len(requested[key]) > 0:
			r.run(ctx, rcv, requested[key], lastRequested(rcv.Status.LastSync))
		}
	}
}

// groupRequests lists the ChatGroups with a resync-requested-at annotation
// not yet handled, by receiver.
func (r *Runner) groupRequests(ctx context.Context) (map[types.NamespacedName][]string, error) {
	var groups imv1.ChatGroupList
	if err := r.client.List(ctx, &groups); err != nil {
		return nil, err
	}
	out := map[types.NamespacedName][]string{}
	for _, cg := range groups.Items {
		want, ok := cg.Annotations[imv1.ResyncRequestedAnnotation]
		rcv := cg.Labels[imv1.ReceiverLabel]
		if !ok || rcv == "" || want == lastRequested(cg.Status.LastSync) || r.wasHandled(cg.UID, want) {
			continue
		}
		r.markHandled(cg.UID, want)
		key := types.NamespacedName{Namespace: cg.Namespace, Name: rcv}
		out[key] = append(out[key], cg.Spec.GroupID)
	}
	return out, nil
}

func lastRequested(s *imv1.SyncStatus) string {
	if s == nil {
		return ""
	}
	return s.Requested
}

// wasHandled reports whether this loop already ran the pass requested
// with value for the object.
func (r *Runner) wasHandled(uid types.UID, value string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.handled[uid]
	return ok && h.requested == value
}

func (r *Runner) markHandled(uid types.UID, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handled[uid] = handledPass{requested: value, at: time.Now()}
}

// due reports whether a receiver needs a full pass now.
func (r *Runner) due(rcv *imv1.ChatReceiver) bool {
	last := rcv.Status.LastSync
	want, requested := rcv.Annotations[imv1.ResyncRequestedAnnotation]
	if requested && want != lastRequested(last) && !r.wasHandled(rcv.UID, want) {
		return true
	}
	r.mu.Lock()
	b, failing := r.retry[rcv.UID]
	h, ran := r.handled[rcv.UID]
	r.mu.Unlock()
	if failing {
		return !time.Now().Before(b.next)
	}
	lastTime := time.Time{}
	if last != nil {
		lastTime = last.Time.Time
	}
	if ran && h.at.After(lastTime) {
		lastTime = h.at
	}
	return lastTime.IsZero() || !time.Now().Before(lastTime.Add(interval(rcv)))
}

func interval(rcv *imv1.ChatReceiver) time.Duration {
	if rcv.Spec.Resync.Interval != nil && rcv.Spec.Resync.Interval.Duration > 0 {
		return rcv.Spec.Resync.Interval.Duration
	}
	return DefaultInterval
}

// run runs one pass and schedules the retry of a failed one.
func (r *Runner) run(ctx context.Context, rcv *imv1.ChatReceiver, only []string, requested string) {
	rc, err := r.restClient(ctx, rcv)
	var res PassResult
	if err != nil {
		res = PassResult{Time: time.Now(), Err: err, Corrected: map[imv1.EventKind]int{}}
		r.syncer.finish(ctx, rcv, &res, requested)
	} else {
		res = r.syncer.Pass(ctx, rcv, rc, only, requested)
	}
	r.log.Info("Resync pass", "chatReceiver", client.ObjectKeyFromObject(rcv), "groups", res.Groups,
		"corrections", res.Corrections, "failed", res.Failed, "partial", res.Partial, "duration", res.Duration)
	r.mu.Lock()
	defer r.mu.Unlock()
	if res.Err == nil && res.Failed == 0 && res.Partial == 0 {
		delete(r.retry, rcv.UID)
		return
	}
	if res.Err != nil {
		r.log.Error(res.Err, "Resync pass failed", "chatReceiver", client.ObjectKeyFromObject(rcv))
	}
	b := r.retry[rcv.UID]
	b.wait = min(max(2*b.wait, r.opts.MinBackoff), interval(rcv))
	b.next = time.Now().Add(b.wait)
	r.retry[rcv.UID] = b
}

// restClient returns the receiver's REST client, built again only when
// the receiver's resync settings or key change, so that its credentials
// (an OpenIM admin token above all) are reused across passes.
func (r *Runner) restClient(ctx context.Context, rcv *imv1.ChatReceiver) (provider.RESTClient, error) {
	spec := rcv.Spec.Resync
	var secret corev1.Secret
	if err := r.reader.Get(ctx, types.NamespacedName{Namespace: rcv.Namespace, Name: spec.SecretRef.Name}, &secret); err != nil {
		return nil, fmt.Errorf("reading the resync Secret %s: %w", spec.SecretRef.Name, err)
	}
	key := string(secret.Data[imv1.ResyncKeyKey])
	if key == "" {
		return nil, fmt.Errorf("the resync Secret %s has no %q key", spec.SecretRef.Name, imv1.ResyncKeyKey)
	}
	sum := sha256.Sum256([]byte(string(rcv.Spec.Provider) + "\x00" + rcv.Spec.AppID + "\x00" + spec.Endpoint + "\x00" + spec.Admin + "\x00" + key))
	fp := hex.EncodeToString(sum[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[rcv.UID]; ok && c.fingerprint == fp {
		return c.client, nil
	}
	newClient := r.opts.NewClient
	if newClient == nil {
		newClient = NewClient
	}
	c, err := newClient(rcv, key)
	if err != nil {
		return nil, err
	}
	r.clients[rcv.UID] = cachedClient{fingerprint: fp, client: c}
	return c, nil
}

// NewClient builds the REST client of a receiver's provider, counting its
// failed calls in chatgroup_resync_api_errors_total.
func NewClient(rcv *imv1.ChatReceiver, key string) (provider.RESTClient, error) {
	spec := rcv.Spec.Resync
	onError := func(err error) {
		apiErrors.WithLabelValues(string(rcv.Spec.Provider), provider.ErrorCode(err)).Inc()
	}
	switch rcv.Spec.Provider {
	case imv1.ProviderTencent:
		appID, err := strconv.ParseUint(rcv.Spec.AppID, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("spec.appID %q is not a Tencent SDKAppID", rcv.Spec.AppID)
		}
		c := tencent.NewClient(spec.Endpoint, appID, spec.Admin, key)
		c.Retry.OnError = onError
		return c, nil
	case imv1.ProviderOpenIM:
		c := openim.NewClient(spec.Endpoint, spec.Admin, key)
		c.Retry.OnError = onError
		return c, nil
	}
	return nil, errors.New("resync is not supported for provider " + string(rcv.Spec.Provider))
}
