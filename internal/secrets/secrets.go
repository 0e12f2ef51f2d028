// Package secrets reads the Secrets the operator needs (receiver tokens,
// and later resync keys) one by one from the API server, with a short
// cache. It exists so that the operator never watches Secrets: a
// cluster-wide Secret informer would hold every Secret of the cluster in
// the memory of the Internet-facing process, and needs list and watch on
// all Secrets (security audit H1).
package secrets

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultTTL is how long a read is reused: Flux notification-controller's
// and Tekton's interceptors' choice. A rotated-out token stops working at
// most this long after the Secret changes.
const DefaultTTL = 5 * time.Second

// MaxStale is how long a Secret read successfully is still used while the
// API server cannot be reached: an outage of the API server must not make
// the callback server refuse every callback (the fault tests kill it under
// load). A Secret the API server says is gone or forbidden is never served
// stale.
const MaxStale = 10 * time.Minute

// DefaultMaxEntries bounds the cache: one entry per receiver Secret in use.
const DefaultMaxEntries = 4096

// Reader reads Secrets with a GET each, and reuses a result (including
// NotFound) for TTL. It is safe for concurrent use.
type Reader struct {
	reader     client.Reader
	ttl        time.Duration
	maxEntries int
	now        func() time.Time

	mu      sync.Mutex
	entries map[types.NamespacedName]entry
}

type entry struct {
	secret  *corev1.Secret
	err     error
	expires time.Time
	// read is when secret was last read successfully.
	read time.Time
}

// NewReader returns a Reader over r, which must read the API server
// directly (a manager's APIReader), never a cache.
func NewReader(r client.Reader, ttl time.Duration) *Reader {
	return &Reader{reader: r, ttl: ttl, maxEntries: DefaultMaxEntries, now: time.Now,
		entries: map[types.NamespacedName]entry{}}
}

// Get returns the Secret key, or the error reading it (NotFound included).
// The Secret returned is shared: callers must not modify it.
func (r *Reader) Get(ctx context.Context, key types.NamespacedName) (*corev1.Secret, error) {
	now := r.now()
	r.mu.Lock()
	e, ok := r.entries[key]
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.secret, e.err
	}
	secret := &corev1.Secret{}
	err := r.reader.Get(ctx, key, secret)
	switch {
	case err == nil:
		r.store(key, entry{secret: secret, expires: now.Add(r.ttl), read: now}, now)
		return secret, nil
	case ctx.Err() != nil:
		return nil, err // the caller gave up: nothing learned
	case ok && e.secret != nil && unreachable(err) && now.Sub(e.read) < MaxStale:
		// The API server is down or overloaded: keep using the last
		// good read for another TTL.
		r.store(key, entry{secret: e.secret, expires: now.Add(r.ttl), read: e.read}, now)
		return e.secret, nil
	}
	r.store(key, entry{err: err, expires: now.Add(r.ttl)}, now)
	return nil, err
}

// unreachable tells an API server that could not answer from one that
// answered about the Secret (gone, forbidden, invalid).
func unreachable(err error) bool {
	return !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err) &&
		!apierrors.IsBadRequest(err) && !apierrors.IsInvalid(err)
}

// Forget drops a cached read, so that the next Get reads the API server.
func (r *Reader) Forget(key types.NamespacedName) {
	r.mu.Lock()
	delete(r.entries, key)
	r.mu.Unlock()
}

// store records a read, first dropping expired entries when the cache is
// full, and every entry if that is not enough: the cache is only a short
// reprieve for the API server, so dropping it is always safe.
func (r *Reader) store(key types.NamespacedName, e entry, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.entries) >= r.maxEntries {
		for k, old := range r.entries {
			if !now.Before(old.expires) {
				delete(r.entries, k)
			}
		}
		if len(r.entries) >= r.maxEntries {
			clear(r.entries)
		}
	}
	r.entries[key] = e
}
