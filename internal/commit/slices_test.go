package commit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/commit"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

const (
	testThreshold = 40
	testFill      = 8
)

func testOptions() commit.Options {
	return commit.Options{Concurrency: 4, MaxPending: 1000, RetryTimeout: time.Minute, DrainTimeout: time.Second,
		Limits:         groupstate.Limits{MaxMembers: 100000, MaxDeparted: 1000, JournalSize: 64, DedupeWindow: 128},
		SliceThreshold: testThreshold, SliceFill: testFill}
}

// group is one ChatGroup under test, with the members it must have.
type group struct {
	t       *testing.T
	c       client.Client
	cm      *commit.Committer
	target  commit.Target
	members map[string]bool
	clock   time.Time
}

func newTestGroup(t *testing.T, c client.Client, cm *commit.Committer, ns string) *group {
	t.Helper()
	if err := testsupport.CreateNamespace(context.Background(), c, ns); err != nil {
		t.Fatal(err)
	}
	spec := imv1.ChatGroupSpec{Provider: imv1.ProviderTencent, AppID: "1400000000", GroupID: "@TGS#" + ns}
	return &group{t: t, c: c, cm: cm, members: map[string]bool{}, clock: time.Now().Add(-time.Hour),
		target: commit.Target{Spec: spec, Receiver: types.NamespacedName{Namespace: ns, Name: "r"},
			Key: types.NamespacedName{Namespace: ns, Name: imv1.ChatGroupName(spec.Provider, spec.AppID, spec.GroupID)}}}
}

func users(from, n int) []groupstate.Member {
	ms := make([]groupstate.Member, n)
	for i := range ms {
		ms[i] = groupstate.Member{UserID: fmt.Sprintf("user-%05d", from+i), Role: imv1.RoleMember}
	}
	return ms
}

// send stores one event that joins or removes members, and records the
// expected membership.
func (g *group) send(kind imv1.EventKind, ms []groupstate.Member) {
	g.t.Helper()
	g.clock = g.clock.Add(time.Second)
	ev := groupstate.GroupEvent{Provider: imv1.ProviderTencent, AppID: g.target.Spec.AppID, GroupID: g.target.Spec.GroupID,
		Kind: kind, Members: ms, EventTime: g.clock, Key: fmt.Sprintf("k%d", g.clock.UnixNano())}
	if kind == imv1.EventMembersLeft {
		ev.Reason = imv1.LeaveQuit
	}
	ch, err := g.cm.Submit(g.target, ev)
	if err != nil {
		g.t.Fatal(err)
	}
	if res := <-ch; res.Err != nil || res.Result != groupstate.Applied {
		g.t.Fatalf("%s of %d members: %+v", kind, len(ms), res)
	}
	for _, m := range ms {
		g.members[m.UserID] = kind != imv1.EventMembersLeft
	}
}

// listed returns the stored ChatGroup and how often each user is listed:
// in status.members for a small group, in the slices for a large one,
// listed by the group label as the docs say.
func (g *group) listed() (*imv1.ChatGroup, map[string]int) {
	g.t.Helper()
	ctx := context.Background()
	cg := &imv1.ChatGroup{}
	if err := g.c.Get(ctx, g.target.Key, cg); err != nil {
		g.t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range cg.Status.Members {
		seen[m.UserID]++
	}
	var list imv1.ChatGroupMemberSliceList
	if err := g.c.List(ctx, &list, client.InNamespace(cg.Namespace), client.MatchingLabels{imv1.GroupLabel: cg.Name}); err != nil {
		g.t.Fatal(err)
	}
	for _, sl := range list.Items {
		for _, m := range sl.Members {
			seen[m.UserID]++
		}
	}
	return cg, seen
}

// check verifies that every member is listed exactly once, nobody else
// is, memberCount is exact, and the members are where they should be.
func (g *group) check(wantSliced bool) {
	g.t.Helper()
	cg, seen := g.listed()
	want := 0
	for id, in := range g.members {
		if in {
			want++
			if seen[id] != 1 {
				g.t.Errorf("%s is listed %d times, want once", id, seen[id])
			}
		} else if seen[id] != 0 {
			g.t.Errorf("%s left but is listed %d times", id, seen[id])
		}
	}
	if len(seen) != want || int(cg.Status.MemberCount) != want {
		g.t.Errorf("listed %d, memberCount %d, want %d", len(seen), cg.Status.MemberCount, want)
	}
	if sliced := cg.Status.MemberSlices != nil; sliced != wantSliced || sliced && len(cg.Status.Members) > 0 {
		g.t.Errorf("sliced = %v with %d members inline, want sliced = %v", sliced, len(cg.Status.Members), wantSliced)
	}
	if ms := cg.Status.MemberSlices; ms != nil && int(ms.Listed) != want {
		g.t.Errorf("memberSlices.listed = %d, want %d", ms.Listed, want)
	}
}

func TestCommit_slicedGroupListsEveryMemberExactlyOnce(t *testing.T) {
	env := testsupport.Start(t)
	cm := commit.New(env.Client, env.Client, nil, logr.Discard(), testOptions())
	g := newTestGroup(t, env.Client, cm, "sliced")

	g.send(imv1.EventCreated, users(0, 10))
	g.check(false)
	g.send(imv1.EventMembersJoined, users(10, 40)) // 50 > threshold: moves to slices
	g.check(true)
	for i := range 5 { // single joins and leaves: one slice each
		g.send(imv1.EventMembersJoined, users(100+i, 1))
		g.send(imv1.EventMembersLeft, users(i, 1))
		g.check(true)
	}
	g.send(imv1.EventMembersJoined, users(1000, 300)) // a bulk join: the slices it touches
	g.check(true)
	g.send(imv1.EventMembersJoined, users(2000, 1100)) // larger than a delta: a new generation
	g.check(true)
	g.send(imv1.EventMembersLeft, users(2000, 1100))
	g.send(imv1.EventMembersLeft, users(1000, 300))
	g.send(imv1.EventMembersLeft, users(5, 40))
	g.check(false) // 10 members, below half the threshold: inline again
}

func TestCommit_slicedGroupGoesBackInlineBelowHalfTheThreshold(t *testing.T) {
	env := testsupport.Start(t)
	cm := commit.New(env.Client, env.Client, nil, logr.Discard(), testOptions())
	g := newTestGroup(t, env.Client, cm, "shrink")

	g.send(imv1.EventCreated, users(0, 50))
	g.check(true)
	g.send(imv1.EventMembersLeft, users(0, 25)) // 25: between half the threshold and the threshold
	g.check(true)
	g.send(imv1.EventMembersLeft, users(25, 10)) // 15: inline again, slices deleted
	g.check(false)
}
