package localcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// SampleTokenSecrets are the Secrets the receivers in config/samples name.
// The samples ship no token: a sample token would be a known credential,
// and for OpenIM a known token makes the webhook path computable by anyone
// (security audit L5). ApplySamples creates them with random tokens.
var SampleTokenSecrets = []string{"tencent-callback-token", "openim-callback-token"}

// ApplySamples creates the samples' token Secrets in namespace, each with a
// random 256-bit token (a Secret that already exists keeps its token), and
// then applies the samples' kustomization in dir.
func (c *Cluster) ApplySamples(ctx context.Context, dir, namespace string) error {
	for _, name := range SampleTokenSecrets {
		token, err := RandomToken()
		if err != nil {
			return err
		}
		out, err := c.Kubectl(ctx, "create", "secret", "generic", name, "--namespace", namespace,
			"--from-literal=token="+token)
		if err != nil && !strings.Contains(string(out), "AlreadyExists") && !strings.Contains(string(out), "already exists") {
			return err
		}
	}
	_, err := c.Kubectl(ctx, "apply", "--server-side", "--namespace", namespace, "-k", dir)
	return err
}

// RandomToken is 32 random bytes in hex, as `openssl rand -hex 32` makes.
func RandomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
