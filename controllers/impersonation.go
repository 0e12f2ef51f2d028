package controllers

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The operator may impersonate ServiceAccounts, and nothing else: it
// creates each trigger's Jobs as the trigger's ServiceAccount.
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=impersonate

// maxImpersonatingClients bounds the clients kept, one per ServiceAccount
// that triggers act as.
const maxImpersonatingClients = 1024

// impersonatingClients hands out API clients that act as a ServiceAccount.
// The API server then authorizes (RBAC) and admits (for example Pod
// Security admission or a policy engine) each request as that
// ServiceAccount, as Tekton does for its triggers.
type impersonatingClients struct {
	config *rest.Config
	scheme *runtime.Scheme
	mapper meta.RESTMapper

	mu      sync.Mutex
	clients map[string]client.Client
}

func newImpersonatingClients(cfg *rest.Config, scheme *runtime.Scheme, mapper meta.RESTMapper) *impersonatingClients {
	return &impersonatingClients{config: cfg, scheme: scheme, mapper: mapper, clients: map[string]client.Client{}}
}

// For returns a client acting as the ServiceAccount namespace/name.
func (ic *impersonatingClients) For(namespace, name string) (client.Client, error) {
	user := serviceAccountUser(namespace, name)
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if c, ok := ic.clients[user]; ok {
		return c, nil
	}
	cfg := rest.CopyConfig(ic.config)
	// The API server adds the ServiceAccount's groups itself.
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: ic.scheme, Mapper: ic.mapper})
	if err != nil {
		return nil, fmt.Errorf("building a client acting as %s: %w", user, err)
	}
	if len(ic.clients) >= maxImpersonatingClients {
		clear(ic.clients)
	}
	ic.clients[user] = c
	return c, nil
}

// serviceAccountUser is the user name a ServiceAccount authenticates as.
func serviceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}
