package webhookserver

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/commit"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
)

// Per-receiver caps, so that one tenant cannot exhaust what every tenant
// shares (security audit H2): the queue of events waiting to be stored,
// and the operator's memory, which grows with the ChatGroups it caches.

// errReceiverBusy means the receiver already has its share of the events
// waiting to be stored.
var errReceiverBusy = errors.New("too many events of this receiver waiting to be stored")

// errGroupLimit means the receiver already has its maximum of ChatGroups.
var errGroupLimit = errors.New("this receiver has reached its maximum number of ChatGroups")

// acquirePending takes one of the receiver's slots in the commit queue.
func (s *Server) acquirePending(rcv types.NamespacedName) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[rcv] >= s.opts.MaxPendingPerReceiver {
		return false
	}
	s.pending[rcv]++
	return true
}

// releasePending gives a slot back.
func (s *Server) releasePending(rcv types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[rcv]--; s.pending[rcv] <= 0 {
		delete(s.pending, rcv)
	}
}

// submit queues the event within the receiver's share of the queue. The
// slot is held until the committer settles the event, which may be long
// after the reply (an event that missed the commit budget is retried).
func (s *Server) submit(target commit.Target, ev groupstate.GroupEvent) (<-chan commit.Result, error) {
	if !s.acquirePending(target.Receiver) {
		return nil, errReceiverBusy
	}
	done, err := s.committer.Submit(target, ev)
	if err != nil {
		s.releasePending(target.Receiver)
		return nil, err
	}
	settled := make(chan commit.Result, 1)
	go func() {
		res := <-done
		s.releasePending(target.Receiver)
		settled <- res
	}()
	return settled, nil
}

// checkGroupLimit refuses an event that would create a ChatGroup beyond
// the receiver's maximum. Events for existing groups always pass. The
// count comes from the cache, so concurrent creations may overshoot it by
// a few; a ResourceQuota on count/chatgroups.im.chatgroup.dev is the hard
// limit per namespace.
func (s *Server) checkGroupLimit(ctx context.Context, target commit.Target) error {
	if s.opts.MaxGroupsPerReceiver <= 0 {
		return nil
	}
	var cg imv1.ChatGroup
	err := s.client.Get(ctx, target.Key, &cg)
	if err == nil || !apierrors.IsNotFound(err) {
		return nil // exists, or the committer will find out
	}
	var groups imv1.ChatGroupList
	if err := s.client.List(ctx, &groups, client.InNamespace(target.Key.Namespace),
		client.MatchingLabels{imv1.ReceiverLabel: target.Labels[imv1.ReceiverLabel]}); err != nil {
		return fmt.Errorf("counting the receiver's ChatGroups: %w", err)
	}
	if len(groups.Items) >= s.opts.MaxGroupsPerReceiver {
		return errGroupLimit
	}
	return nil
}
