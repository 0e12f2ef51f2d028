package webhookserver

import (
	"context"
	"fmt"
	"strings"
	"time"

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
	key := types.NamespacedName{Namespace: rcv.Namespace, Name: rcv.Spec.SecretRef.Name}
	secret, err := s.secrets.Get(ctx, key)
	if err != nil {
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
	c.HeaderToken = string(secret.Data[imv1.HeaderTokenKey])
	if (c.Username == "") != (c.Password == "") {
		// Half a basic-auth pair must not turn basic auth off (security
		// audit L4): refuse every request until the Secret is fixed.
		return provider.Credentials{}, fmt.Errorf("the receiver's Secret %s has only one of %q and %q", key.Name, imv1.UsernameKey, imv1.PasswordKey)
	}
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

// routeForLog keeps the secret part of a path out of logs, whatever the
// path's shape (a doubled slash, a missing or extra segment): every run of
// more than 8 hex digits is cut to its first 8, as MaskWebhookPath does
// for well-formed paths, and long paths are truncated.
func routeForLog(p string) string {
	if _, _, ok := splitPath(p); ok {
		return imv1.MaskWebhookPath(p)
	}
	var b strings.Builder
	run := 0
	for _, r := range p {
		if isHexDigit(r) {
			if run++; run == maskedHexDigits+1 {
				b.WriteString("…")
			}
			if run > maskedHexDigits {
				continue
			}
		} else {
			run = 0
		}
		b.WriteRune(r)
	}
	out := b.String()
	if len(out) > 64 {
		out = out[:64] + "..."
	}
	return out
}

// maskedHexDigits is how many hex digits of a run routeForLog keeps.
const maskedHexDigits = 8

func isHexDigit(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F'
}
