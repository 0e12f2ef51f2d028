// Package controllers holds the reconcilers: ChatReceiver (webhook paths
// from Secrets), ChatGroupTrigger (spec validation) and ChatGroup (Events
// for the journal, trigger Jobs and CloudEvents, conditions and TTL). They run on the
// elected leader only; the callback server in webhookserver runs on every
// replica.
package controllers

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/cloudevent"
)

// Options configures the reconcilers.
type Options struct {
	// MaxConcurrentReconciles bounds the objects of each kind reconciled in
	// parallel.
	MaxConcurrentReconciles int
	// EventRecorderName is the reportingController of the Events the
	// reconcilers send.
	EventRecorderName string
	// CloudEvents tunes the sender of the triggers' CloudEvents; zero
	// values take the sender's defaults.
	CloudEvents cloudevent.Options
	// DefaultSink is the operator-wide CloudEvents sink (K_SINK and
	// K_CE_OVERRIDES, see cloudevent.DefaultTarget), or nil.
	DefaultSink *cloudevent.Target
	// SecretRecheckInterval is how often each ChatReceiver's Secret is
	// read again. The operator does not watch Secrets, so this is how soon
	// a new or rotated token's path is published.
	SecretRecheckInterval time.Duration
}

// DefaultOptions returns the defaults used for unset fields.
func DefaultOptions() Options {
	return Options{
		MaxConcurrentReconciles: 4,
		EventRecorderName:       "chatgroup-controller",
		SecretRecheckInterval:   time.Minute,
	}
}

// withDefaults fills in unset fields.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = d.MaxConcurrentReconciles
	}
	if o.EventRecorderName == "" {
		o.EventRecorderName = d.EventRecorderName
	}
	if o.SecretRecheckInterval <= 0 {
		o.SecretRecheckInterval = d.SecretRecheckInterval
	}
	return o
}

// BindFlags registers the options as command-line flags, with the current
// values (or the defaults, for unset fields) as flag defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	*o = o.withDefaults()
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"Objects of each kind (ChatGroup, ChatReceiver, ChatGroupTrigger) reconciled in parallel.")
	fs.StringVar(&o.EventRecorderName, "event-recorder-name", o.EventRecorderName,
		"Reporting controller name of the Kubernetes Events the reconcilers send.")
	fs.DurationVar(&o.SecretRecheckInterval, "secret-recheck-interval", o.SecretRecheckInterval,
		"How often each ChatReceiver's Secret is read again (Secrets are not watched), so how soon a new or rotated token's path is published.")
}

// SetupWithManager registers every reconciler with the manager. They need
// leader election, which is controller-runtime's default for controllers.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	opts = opts.withDefaults()
	recorder := mgr.GetEventRecorder(opts.EventRecorderName)
	if recorder == nil {
		return errors.New("the manager has no event recorder")
	}
	receivers := &ChatReceiverReconciler{client: mgr.GetClient(), apiReader: mgr.GetAPIReader(), recorder: recorder,
		secretRecheck: opts.SecretRecheckInterval}
	if err := receivers.SetupWithManager(mgr, opts); err != nil {
		return fmt.Errorf("setting up the ChatReceiver controller: %w", err)
	}
	triggers := &ChatGroupTriggerReconciler{client: mgr.GetClient(), recorder: recorder}
	if err := triggers.SetupWithManager(mgr, opts); err != nil {
		return fmt.Errorf("setting up the ChatGroupTrigger controller: %w", err)
	}
	sends, err := setUpDeliveries(mgr, opts)
	if err != nil {
		return err
	}
	groups := &ChatGroupReconciler{
		client:     mgr.GetClient(),
		apiReader:  mgr.GetAPIReader(),
		scheme:     mgr.GetScheme(),
		recorder:   recorder,
		writes:     newStatusWrites(),
		now:        time.Now,
		deliveries: sends,
		// Jobs are created as the trigger's ServiceAccount, never as the
		// operator (security audit M7).
		jobClients: newImpersonatingClients(mgr.GetConfig(), mgr.GetScheme(), mgr.GetRESTMapper()),
	}
	if err := groups.SetupWithManager(mgr, opts); err != nil {
		return fmt.Errorf("setting up the ChatGroup controller: %w", err)
	}
	return nil
}

// setUpDeliveries creates the CloudEvents sender. Its rounds of sending run
// until the manager stops.
func setUpDeliveries(mgr ctrl.Manager, opts Options) (*deliveries, error) {
	sender, err := cloudevent.NewSender(opts.CloudEvents)
	if err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	stop := manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		cancel()
		return nil
	})
	if err := mgr.Add(stop); err != nil {
		cancel()
		return nil, fmt.Errorf("adding the CloudEvents sender: %w", err)
	}
	return newDeliveries(base, sender, opts.DefaultSink), nil
}

// CacheOptions are the manager's cache options the reconcilers need: only
// the Jobs that triggers start (they carry GroupLabel, see jobs.go) are
// cached, since caching every Job in the cluster would cost memory for
// nothing.
func CacheOptions() cache.Options {
	req, err := labels.NewRequirement(imv1.GroupLabel, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid requirement
	}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&batchv1.Job{}: {Label: labels.NewSelector().Add(*req)},
	}}
}

// ClientOptions are the manager's client options: Secrets never go through
// the cache. The operator may only get Secrets by name (no list or watch),
// and a cluster-wide Secret informer would hold every Secret of the cluster
// in the memory of the Internet-facing process (security audit H1).
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}}
}
