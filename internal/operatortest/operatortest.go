// Package operatortest runs the callback server in-process against a real
// API server, for the benchmark and the fault tests.
package operatortest

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/loadgen"
	"chatgroup.dev/chatgroup-operator/webhookserver"
)

// Replica is one running manager with the callback server.
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

// StartReplica runs a manager with the callback server on a free loopback
// port, with main.go's client rate limits, and waits until it serves.
func StartReplica(cfg *rest.Config, scheme *runtime.Scheme, opts webhookserver.Options) (*Replica, error) {
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

// SetUpReceiver creates namespace ns with a receiver named "load" and its
// Secret, sets the receiver's status as the ChatReceiver reconciler would,
// and returns the load generator's target (without base URLs).
func SetUpReceiver(ctx context.Context, c client.Client, ns string, provider imv1.Provider) (loadgen.Target, error) {
	const name, token = "load", "load-token"
	target := loadgen.Target{Token: token, WebhookPath: imv1.WebhookPath(ns, name, token)}
	if provider == imv1.ProviderTencent {
		target.AppID = "1400000000"
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: map[string]string{imv1.TokenKey: token}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return target, fmt.Errorf("creating %T: %w", o, err)
		}
	}
	rcv := &imv1.ChatReceiver{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: imv1.ChatReceiverSpec{Provider: provider, AppID: target.AppID, SecretRef: imv1.SecretReference{Name: name},
			RateLimit: &imv1.RateLimit{RequestsPerSecond: 1000000, Burst: 1000000}}}
	if err := c.Create(ctx, rcv); err != nil {
		return target, fmt.Errorf("creating the receiver: %w", err)
	}
	rcv.Status.WebhookPath = target.WebhookPath
	return target, c.Status().Update(ctx, rcv)
}
