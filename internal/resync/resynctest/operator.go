// Package resynctest runs the operator in-process for resync tests: the
// callback server, the reconcilers and the resync loop in one manager, as
// main.go wires them, with REST clients that retry fast.
package resynctest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/controllers"
	"chatgroup.dev/chatgroup-operator/internal/provider"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
	"chatgroup.dev/chatgroup-operator/internal/resync"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
	"chatgroup.dev/chatgroup-operator/webhookserver"
)

// ClientFactory returns a resync client factory whose clients retry with
// retry and, when timeout is not 0, give each call at most timeout.
func ClientFactory(retry provider.Retry, timeout time.Duration) func(*imv1.ChatReceiver, string) (provider.RESTClient, error) {
	return func(rcv *imv1.ChatReceiver, key string) (provider.RESTClient, error) {
		c, err := resync.NewClient(rcv, key)
		if err != nil {
			return nil, err
		}
		var hc *http.Client
		if timeout != 0 {
			hc = &http.Client{Timeout: timeout}
		}
		switch c := c.(type) {
		case *tencent.Client:
			c.Retry = retry
			if hc != nil {
				c.HTTP = hc
			}
		case *openim.Client:
			c.Retry = retry
			if hc != nil {
				c.HTTP = hc
			}
		}
		return c, nil
	}
}

// StartOperator runs the callback server on a free loopback port, the
// reconcilers and the resync loop (with opts) for namespace ns, in one
// manager, until the test ends; it returns the callback server's URL.
// Tests may start several in one process: controller names are not
// checked for uniqueness.
func StartOperator(t testing.TB, env *testsupport.Env, ns string, opts resync.Options) string {
	t.Helper()
	cacheOpts := controllers.CacheOptions()
	cacheOpts.DefaultNamespaces = map[string]cache.Config{ns: {}}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Cache: cacheOpts,
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		Metrics:    metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	cbOpts := webhookserver.DefaultOptions()
	cbOpts.Addr = "127.0.0.1:0"
	srv := webhookserver.New(mgr, cbOpts)
	for _, err := range []error{
		srv.SetupWithManager(mgr),
		controllers.SetupWithManager(mgr, controllers.Options{}),
		resync.SetupWithManager(mgr, srv.Committer(), opts),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager stopped with an error: %v", err)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for srv.BoundAddr() == "" {
		if time.Now().After(deadline) {
			t.Fatal("callback server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + srv.BoundAddr()
}
