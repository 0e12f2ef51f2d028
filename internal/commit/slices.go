package commit

import (
	"context"
	"errors"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/memberslice"
)

// Member slices. Below SliceThreshold members a ChatGroup keeps its
// members in status.members. Above it, they move to
// ChatGroupMemberSlices, and each commit goes:
//
//  1. load: the members are the slices of status.memberSlices.generation
//     with the change of the last commit (status.memberSlices.added and
//     .removed) applied; slices that missed that change are brought up to
//     date first (a crash, or another replica, between its two writes);
//  2. reduce the batch over the full member list, as for a small group;
//  3. write the status without the member list, with exact memberCount and
//     this commit's change in status.memberSlices (the commit record);
//  4. rewrite the slices holding the changed members (seq-guarded, so
//     repeating it is harmless).
//
// A change too large for status.memberSlices (more than MaxDeltaMembers),
// a group crossing the threshold, or slices filled far off SliceFill
// instead writes a whole new generation before the status write; the
// status write switches to it, and the old generation is deleted after.
// Until the status names it, a new generation holds nothing.

// rewriteTimeout bounds writing a new generation of slices.
const rewriteTimeout = 5 * time.Minute

// memberVersion identifies the member list a sliced group had as of a
// status: its generation and seq.
type memberVersion struct{ generation, seq int64 }

func versionOf(ms *imv1.MemberSlicesStatus) memberVersion {
	if ms == nil {
		return memberVersion{}
	}
	return memberVersion{ms.Generation, ms.Seq}
}

// memberPlan is what to do to the slices once the status is written.
type memberPlan struct {
	// members is the full member list after the batch (sliced groups).
	members []imv1.GroupMember
	// changed are the user IDs whose slices must be rewritten.
	changed []string
	// keep is the only generation that may remain (0: none); set when
	// older generations must be deleted.
	keep  int64
	prune bool
}

func (c *Committer) slices() memberslice.Store {
	return memberslice.Store{Client: c.client, Reader: c.reader}
}

// loadMembers returns a ChatGroup's full member list as of its status:
// status.members for a small group; for a sliced group the list the queue
// holds when it is of the same version, or else the slices, after
// repairing them.
func (c *Committer) loadMembers(ctx context.Context, q *groupQueue, cg *imv1.ChatGroup) ([]imv1.GroupMember, error) {
	ms := cg.Status.MemberSlices
	if ms == nil {
		return cg.Status.Members, nil
	}
	if q.members != nil && q.membersAt == versionOf(ms) {
		return q.members, nil
	}
	q.members = nil
	members, err := c.slices().Load(ctx, cg)
	if err != nil {
		return nil, err
	}
	if changed := memberslice.Changed(ms); len(changed) > 0 {
		if err := c.slices().Update(ctx, cg, members, changed); err != nil {
			return nil, err
		}
	}
	if err := c.slices().DeleteOthers(ctx, cg, ms.Generation); err != nil {
		return nil, err
	}
	sliceRepairs.Inc()
	q.members, q.membersAt = members, versionOf(ms)
	return members, nil
}

// placeMembers decides where a reduced status keeps its members, and
// fills in status.memberSlices. before is the member list the batch was
// reduced from. A whole new generation is written here, before the status.
func (c *Committer) placeMembers(cg, work *imv1.ChatGroup, before []imv1.GroupMember) (memberPlan, error) {
	after := work.Status.Members
	old := cg.Status.MemberSlices
	n := len(after)
	if n <= c.opts.SliceThreshold && (old == nil || n <= c.opts.SliceThreshold/2) {
		work.Status.MemberSlices = nil
		return memberPlan{prune: old != nil}, nil
	}
	work.Status.Members = nil
	added, removed := memberDelta(before, after)
	if old != nil && !c.refill(old.Slices, n) && len(added)+len(removed) <= imv1.MaxDeltaMembers {
		ms := old.DeepCopy()
		ms.Added, ms.Removed, ms.Listed = nil, nil, int32(n)
		plan := memberPlan{members: after}
		if len(added)+len(removed) > 0 {
			ms.Seq++
			ms.Added, ms.Removed = added, removed
			plan.changed = memberslice.Changed(ms)
		}
		work.Status.MemberSlices = ms
		return plan, nil
	}
	ms := &imv1.MemberSlicesStatus{Generation: time.Now().UnixNano(), Slices: memberslice.Count(n, c.opts.SliceFill),
		Seq: versionOf(old).seq + 1, Listed: int32(n)}
	// A new generation of a 100,000-member group is some 1,600 slices: it
	// gets more time than one write, bounded by the committer's life.
	rctx, cancel := context.WithTimeout(c.ctx, rewriteTimeout)
	defer cancel()
	if err := c.slices().Rewrite(rctx, work, ms.Generation, ms.Slices, ms.Seq, after); err != nil {
		return memberPlan{}, err
	}
	sliceRewrites.Inc()
	work.Status.MemberSlices = ms
	return memberPlan{members: after, keep: ms.Generation, prune: true}, nil
}

// refill reports whether slices slices are filled too far from SliceFill
// for n members: more than twice as full, or under a quarter.
func (c *Committer) refill(slices int32, n int) bool {
	fill := c.opts.SliceFill
	return n > 2*fill*int(slices) || slices > 1 && 4*n < fill*int(slices)
}

// afterWrite brings the slices up to the status just written. The events
// are stored whatever happens here: the status is the commit record. A
// failure leaves the queue without a member list, so that the next commit
// loads and repairs the slices first.
func (c *Committer) afterWrite(ctx context.Context, q *groupQueue, cg *imv1.ChatGroup, plan memberPlan) {
	q.members, q.membersAt = plan.members, versionOf(cg.Status.MemberSlices)
	var err error
	if len(plan.changed) > 0 {
		err = c.slices().Update(ctx, cg, plan.members, plan.changed)
	}
	if err == nil && plan.prune {
		err = c.slices().DeleteOthers(ctx, cg, plan.keep)
	}
	if err != nil {
		q.members = nil
		sliceWriteErrors.Inc()
		c.log.Error(err, "Member slices lag the stored status; they are repaired before the next commit", "chatGroup", cg.Name)
	}
}

// memberDelta compares two member lists sorted by userID: added are the
// members of after that are new or changed, removed the user IDs that
// left.
func memberDelta(before, after []imv1.GroupMember) (added []imv1.GroupMember, removed []string) {
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		switch {
		case j == len(after) || i < len(before) && before[i].UserID < after[j].UserID:
			removed = append(removed, before[i].UserID)
			i++
		case i == len(before) || after[j].UserID < before[i].UserID:
			added = append(added, after[j])
			j++
		default:
			if !sameMember(before[i], after[j]) {
				added = append(added, after[j])
			}
			i++
			j++
		}
	}
	return added, removed
}

func sameMember(a, b imv1.GroupMember) bool {
	if a.Role != b.Role || (a.JoinedAt == nil) != (b.JoinedAt == nil) {
		return false
	}
	return a.JoinedAt == nil || a.JoinedAt.Equal(b.JoinedAt)
}

// repairAll brings the member slices of every sliced ChatGroup that
// carries a change (status.memberSlices.added or .removed) up to date with
// its status. Slices are written seq-guarded, so racing a commit of the
// same group is harmless.
func (c *Committer) repairAll(ctx context.Context) {
	var list imv1.ChatGroupList
	for {
		err := c.client.List(ctx, &list)
		var notStarted *cache.ErrCacheNotStarted
		if err == nil {
			break
		}
		if !errors.As(err, &notStarted) || ctx.Err() != nil {
			c.log.Error(err, "Cannot list ChatGroups to repair their member slices")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	for i := range list.Items {
		cg := &list.Items[i]
		if ms := cg.Status.MemberSlices; ms == nil || len(ms.Added)+len(ms.Removed) == 0 {
			continue
		}
		if _, err := c.loadMembers(ctx, &groupQueue{}, cg); err != nil {
			c.log.Error(err, "Cannot repair member slices; they are repaired before the group's next commit", "chatGroup", cg.Name)
		}
	}
}
