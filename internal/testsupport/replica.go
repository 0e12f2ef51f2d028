package testsupport

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"chatgroup.dev/chatgroup-operator/webhookserver"
)

// Replica is one running manager with only the callback server, as one
// replica of the operator runs it.
type Replica struct {
	// URL is the callback server's base URL.
	URL    string
	cancel context.CancelFunc
	done   chan error
}

// Stop stops the manager and returns its error, if any.
func (r *Replica) Stop() error {
	r.cancel()
	return <-r.done
}

// StartCallbackServer runs a manager with the callback server on a free
// loopback port, with main.go's client rate limits, and waits until it
// serves.
func StartCallbackServer(cfg *rest.Config, scheme *runtime.Scheme, opts webhookserver.Options) (*Replica, error) {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 2000, 4000 // main.go's defaults
	mgr, err := ctrl.NewManager(c, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, err
	}
	opts.Addr = "127.0.0.1:0"
	srv := webhookserver.New(mgr, opts)
	if err := srv.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Replica{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- mgr.Start(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for srv.BoundAddr() == "" || !mgr.GetCache().WaitForCacheSync(ctx) {
		if time.Now().After(deadline) {
			_ = r.Stop()
			return nil, errors.New("callback server did not start within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.URL = "http://" + srv.BoundAddr()
	return r, nil
}
