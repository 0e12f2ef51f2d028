package webhookserver

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// findReceiver returns the receiver whose current or previous path is
// path, or nil.
func (s *Server) findReceiver(ctx context.Context, path string) (*imv1.ChatReceiver, error) {
	var list imv1.ChatReceiverList
	if err := s.client.List(ctx, &list, client.MatchingFields{WebhookPathIndex: path}); err != nil {
		return nil, fmt.Errorf("looking up receiver: %w", err)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	return &list.Items[0], nil
}

// credentials reads the receiver's appID and its Secret's tokens and basic
// auth.
func (s *Server) credentials(ctx context.Context, rcv *imv1.ChatReceiver) (provider.Credentials, error) {
	var secret corev1.Secret
	key := types.NamespacedName{Namespace: rcv.Namespace, Name: rcv.Spec.SecretRef.Name}
	if err := s.client.Get(ctx, key, &secret); err != nil {
		return provider.Credentials{}, fmt.Errorf("reading the receiver's Secret %s: %w", key.Name, err)
	}
	c := provider.Credentials{AppID: rcv.Spec.AppID}
	for _, k := range []string{imv1.TokenKey, imv1.PreviousTokenKey} {
		if t := string(secret.Data[k]); t != "" {
			c.Tokens = append(c.Tokens, t)
		}
	}
	if len(c.Tokens) == 0 {
		return provider.Credentials{}, fmt.Errorf("the receiver's Secret %s has no %q", key.Name, imv1.TokenKey)
	}
	c.Username, c.Password = string(secret.Data[imv1.UsernameKey]), string(secret.Data[imv1.PasswordKey])
	return c, nil
}

// groupLabels are the labels of a ChatGroup the receiver creates.
func groupLabels(rcv *imv1.ChatReceiver) map[string]string { return rcv.GroupLabels() }

// lastEventTimeInterval is how often, at most, a replica records a
// receiver's status.lastEventTime.
const lastEventTimeInterval = 30 * time.Second

// recordLastEventTime records status.lastEventTime, at most once every
// lastEventTimeInterval per receiver and replica, in the background (the
// reply does not wait for it). The write is bounded by the server's life.
func (s *Server) recordLastEventTime(rcv *imv1.ChatReceiver) {
	now := s.now()
	s.mu.Lock()
	if now.Sub(s.lastRecords[rcv.UID]) < lastEventTimeInterval {
		s.mu.Unlock()
		return
	}
	s.lastRecords[rcv.UID] = now
	s.mu.Unlock()

	s.backgroundWrites.Add(1)
	go func() {
		defer s.backgroundWrites.Done()
		ctx, cancel := context.WithTimeout(s.background, 5*time.Second)
		defer cancel()
		base := rcv.DeepCopy()
		patched := rcv.DeepCopy()
		patched.Status.LastEventTime = &metav1.Time{Time: now}
		if err := s.client.Status().Patch(ctx, patched, client.MergeFrom(base)); err != nil {
			s.log.V(1).Info("Could not record lastEventTime", "chatReceiver", klog.KObj(rcv), "error", err.Error())
		}
	}()
}

// splitPath splits /callbacks/<hash>[/<suffix>] into the receiver path and
// the suffix (a provider may put the command there).
func splitPath(p string) (base, suffix string, ok bool) {
	rest, found := strings.CutPrefix(p, imv1.WebhookPathPrefix)
	if !found {
		return "", "", false
	}
	hash, suffix, _ := strings.Cut(rest, "/")
	if len(hash) != 64 || strings.Contains(suffix, "/") {
		return "", "", false
	}
	return imv1.WebhookPathPrefix + hash, suffix, true
}

// routeForLog keeps the secret part of a path out of logs.
func routeForLog(p string) string {
	if _, _, ok := splitPath(p); ok {
		return imv1.MaskWebhookPath(p)
	}
	if len(p) > 64 {
		p = p[:64] + "..."
	}
	return p
}
