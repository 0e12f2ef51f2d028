package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"sigs.k8s.io/yaml"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/localcluster"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim/openimtest"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
)

// The admin accounts the sample receivers resync as; docs/resync.md
// explains both.
const (
	tencentAdmin = "administrator"
	openIMAdmin  = "chatgroup-operator"
)

// fakeProvider is one fake REST API and the sample receiver that resyncs
// from it.
type fakeProvider struct {
	receiver, url string
	// admin and key are the identity the receiver resyncs as.
	admin, key string
	close      func()
}

// startFakeProviders starts a fake Tencent Cloud Chat and a fake OpenIM
// REST API on loopback, each with a random key, and points the sample
// receivers' spec.resync at them. hack/send-callback changes their truth
// before it sends a callback, or instead of it with --drop, so that a
// requested resync shows a lost callback repaired.
func startFakeProviders(ctx context.Context, c *localcluster.Cluster) ([]fakeProvider, error) {
	var rcv imv1.ChatReceiver
	if err := readYAML("config/samples/tencent_receiver.yaml", &rcv); err != nil {
		return nil, err
	}
	appID, err := strconv.ParseUint(rcv.Spec.AppID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("the Tencent sample's appID %q: %w", rcv.Spec.AppID, err)
	}
	tencentKey, err := localcluster.RandomToken()
	if err != nil {
		return nil, err
	}
	openIMKey, err := localcluster.RandomToken()
	if err != nil {
		return nil, err
	}
	tc := tencenttest.NewFakeServer(appID, tencentAdmin, tencentKey)
	oi := openimtest.NewFakeServer(openIMKey, openIMAdmin)
	fakes := []fakeProvider{
		{receiver: "tencent", url: tc.URL, admin: tencentAdmin, key: tencentKey, close: tc.Close},
		{receiver: "openim", url: oi.URL, admin: openIMAdmin, key: openIMKey, close: oi.Close},
	}
	for _, f := range fakes {
		if err := configureResync(ctx, c, f); err != nil {
			closeFakes(fakes)
			return nil, err
		}
	}
	return fakes, nil
}

// configureResync stores the fake's key in a Secret and sets the
// receiver's spec.resync.
func configureResync(ctx context.Context, c *localcluster.Cluster, f fakeProvider) error {
	secret := f.receiver + "-resync"
	if _, err := c.Kubectl(ctx, "create", "secret", "generic", secret, "--namespace", samplesNamespace,
		"--from-literal="+imv1.ResyncKeyKey+"="+f.key); err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"resync": imv1.ResyncSpec{
		Endpoint: f.url, Admin: f.admin, SecretRef: imv1.SecretReference{Name: secret}}}})
	if err != nil {
		return err
	}
	_, err = c.Kubectl(ctx, "patch", "chatreceiver", f.receiver, "--namespace", samplesNamespace,
		"--type=merge", "--patch", string(patch))
	return err
}

func closeFakes(fakes []fakeProvider) {
	for _, f := range fakes {
		f.close()
	}
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}
