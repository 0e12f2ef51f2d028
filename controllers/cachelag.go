package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// statusWrites remembers the resourceVersion of the reconciler's last
// status write to each object, so that a reconcile can tell when the cache
// has not caught up with it yet.
//
// This matters because the reconciler's own fields (announcedSeq, trigger
// cursors, last Job outcomes) record what it already did. A reconcile woken
// right after a write, for example by the Job it just created, would
// otherwise read the old values from the cache and send the same Events
// again. (Jobs are safe either way: their names are deterministic.)
type statusWrites struct {
	mu   sync.Mutex
	last map[types.NamespacedName]writeMark
}

type writeMark struct {
	uid             types.UID
	resourceVersion string
}

func newStatusWrites() *statusWrites {
	return &statusWrites{last: map[types.NamespacedName]writeMark{}}
}

// record notes an object as returned by a successful write.
func (w *statusWrites) record(obj client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[client.ObjectKeyFromObject(obj)] = writeMark{uid: obj.GetUID(), resourceVersion: obj.GetResourceVersion()}
}

// forget drops an object that no longer exists.
func (w *statusWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last, key)
}

// stale reports whether obj, read from the cache, is older than the last
// write. Resource versions that cannot be compared count as fresh.
func (w *statusWrites) stale(obj client.Object) bool {
	w.mu.Lock()
	mark, ok := w.last[client.ObjectKeyFromObject(obj)]
	w.mu.Unlock()
	if !ok || mark.uid != obj.GetUID() {
		return false
	}
	cmp, err := resourceversion.CompareResourceVersion(obj.GetResourceVersion(), mark.resourceVersion)
	return err == nil && cmp < 0
}
