// Command manager runs the chatgroup-operator: the callback server on every
// replica and the reconcilers on the elected leader.
package main

import (
	"crypto/tls"
	"flag"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/controllers"
	"chatgroup.dev/chatgroup-operator/internal/cloudevent"
	"chatgroup.dev/chatgroup-operator/internal/resync"
	"chatgroup.dev/chatgroup-operator/webhookserver"
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(imv1.AddToScheme(scheme))
}

func main() {
	var (
		metricsAddr, probeAddr string
		secureMetrics          bool
		enableHTTP2            bool
		leaderElect            bool
		leaderElectionID       string
		leaderElectionNS       string
		kubeQPS                float64
		kubeBurst              int
		ctrlOpts               controllers.Options
		cbOpts                 = webhookserver.DefaultOptions()
		resyncOpts             = resync.DefaultOptions()
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0",
		"Address the metrics endpoint binds to, for example :8443 (HTTPS) or :8080 (with --metrics-secure=false). 0 disables it.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, with authentication and authorization through the API server.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false,
		"Enable HTTP/2 for the metrics server (off by default: HTTP/2 Rapid Reset).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false,
		"Elect a leader to run the reconcilers. The callback server runs on every replica regardless.")
	flag.StringVar(&leaderElectionID, "leader-election-id", "chatgroup-operator.im.chatgroup.dev",
		"Name of the Lease used for leader election.")
	flag.StringVar(&leaderElectionNS, "leader-election-namespace", "",
		"Namespace of the leader election Lease; defaults to the pod's namespace, and is required out of cluster.")
	// Spread load cannot be batched: 1,000 callbacks/s over 1,000 groups
	// are about 1,000 status writes/s, so the client-side limit sits above
	// that and the API server's priority and fairness does the rest.
	flag.Float64Var(&kubeQPS, "kube-api-qps", 2000, "Client-side rate limit for API server requests per second.")
	flag.IntVar(&kubeBurst, "kube-api-burst", 4000, "Client-side burst for API server requests.")
	cbOpts.BindFlags(flag.CommandLine)
	ctrlOpts.BindFlags(flag.CommandLine)
	resyncOpts.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := cbOpts.Validate(); err != nil {
		setupLog.Error(err, "Invalid callback server flags")
		os.Exit(2)
	}

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		TLSOpts:       tlsOpts,
	}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	restConfig := ctrl.GetConfigOrDie()
	restConfig.QPS = float32(kubeQPS)
	restConfig.Burst = kubeBurst

	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptr.To(15 * time.Second),
		Cache:                         controllers.CacheOptions(),
		Client:                        controllers.ClientOptions(),
	})
	if err != nil {
		setupLog.Error(err, "Unable to create manager")
		os.Exit(1)
	}

	callbackServer := webhookserver.New(mgr, cbOpts)
	if err := callbackServer.SetupWithManager(mgr); err != nil {
		setupLog.Error(err, "Unable to set up the callback server")
		os.Exit(1)
	}
	if err := resync.SetupWithManager(mgr, callbackServer.Committer(), resyncOpts); err != nil {
		setupLog.Error(err, "Unable to set up resync")
		os.Exit(1)
	}
	if ctrlOpts.DefaultSink, err = cloudevent.DefaultTarget(os.Getenv); err != nil {
		setupLog.Error(err, "Invalid default CloudEvents sink")
		os.Exit(2)
	}
	if err := controllers.SetupWithManager(mgr, ctrlOpts); err != nil {
		setupLog.Error(err, "Unable to set up the controllers")
		os.Exit(1)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "Unable to set up health check")
		os.Exit(1)
	}

	setupLog.Info("Starting manager", "callbackAddress", cbOpts.Addr, "leaderElection", leaderElect)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "Manager exited with an error")
		os.Exit(1)
	}
}
