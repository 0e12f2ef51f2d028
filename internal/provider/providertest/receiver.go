package providertest

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
)

// Endpoint is where and how to send one ChatReceiver's callbacks.
type Endpoint struct {
	// Sender builds the receiver's callbacks, with its appID and token.
	Sender callbacks.Sender
	// Path is the receiver's status.webhookPath.
	Path string
	// AppID and Token are the receiver's spec.appID and current token.
	AppID, Token string
}

// ForReceiver reads a ChatReceiver and its Secret and returns its endpoint.
// It fails until the receiver is Ready, that is until the operator has
// published the webhook path, so callers can poll it to wait.
func ForReceiver(ctx context.Context, c client.Reader, key types.NamespacedName) (Endpoint, error) {
	var rcv imv1.ChatReceiver
	if err := c.Get(ctx, key, &rcv); err != nil {
		return Endpoint{}, fmt.Errorf("reading ChatReceiver %s: %w", key, err)
	}
	if !meta.IsStatusConditionTrue(rcv.Status.Conditions, imv1.ReadyCondition) || rcv.Status.WebhookPath == "" {
		reason := "the operator has not reconciled it yet; is it running?"
		if ready := meta.FindStatusCondition(rcv.Status.Conditions, imv1.ReadyCondition); ready != nil && ready.Message != "" {
			reason = ready.Reason + ": " + ready.Message
		}
		return Endpoint{}, fmt.Errorf("ChatReceiver %s is not Ready (%s)", key, reason)
	}
	var secret corev1.Secret
	secretKey := types.NamespacedName{Namespace: key.Namespace, Name: rcv.Spec.SecretRef.Name}
	if err := c.Get(ctx, secretKey, &secret); err != nil {
		return Endpoint{}, fmt.Errorf("reading the token Secret of ChatReceiver %s: %w", key, err)
	}
	token := string(secret.Data[imv1.TokenKey])
	if token == "" {
		return Endpoint{}, fmt.Errorf("secret %s has no %q key", secretKey, imv1.TokenKey)
	}
	p, err := New(string(rcv.Spec.Provider), rcv.Spec.AppID, token)
	if err != nil {
		return Endpoint{}, fmt.Errorf("ChatReceiver %s: %w", key, err)
	}
	return Endpoint{Sender: p, Path: rcv.Status.WebhookPath, AppID: rcv.Spec.AppID, Token: token}, nil
}
