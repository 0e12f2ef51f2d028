package memberslice_test

import (
	"context"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/memberslice"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

func members(from, n int) []imv1.GroupMember {
	t := metav1.NowMicro()
	out := make([]imv1.GroupMember, n)
	for i := range out {
		out[i] = imv1.GroupMember{UserID: fmt.Sprintf("user-%05d", from+i), Role: imv1.RoleMember, JoinedAt: &t}
	}
	return out
}

func newGroup(ctx context.Context, t *testing.T, c client.Client, ns string) *imv1.ChatGroup {
	t.Helper()
	if err := testsupport.CreateNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	spec := imv1.ChatGroupSpec{Provider: imv1.ProviderTencent, AppID: "1400000000", GroupID: "@TGS#slices"}
	cg := &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Namespace: ns,
		Name: imv1.ChatGroupName(spec.Provider, spec.AppID, spec.GroupID)}, Spec: spec}
	if err := c.Create(ctx, cg); err != nil {
		t.Fatal(err)
	}
	return cg
}

// checkListed lists the slices by the group label, as the docs tell users
// to, and checks that they hold exactly want, each member once.
func checkListed(ctx context.Context, t *testing.T, c client.Client, cg *imv1.ChatGroup, want []imv1.GroupMember) {
	t.Helper()
	var list imv1.ChatGroupMemberSliceList
	if err := c.List(ctx, &list, client.InNamespace(cg.Namespace), client.MatchingLabels{imv1.GroupLabel: cg.Name}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, sl := range list.Items {
		if int(sl.MemberCount) != len(sl.Members) {
			t.Errorf("slice %s: memberCount %d, lists %d", sl.Name, sl.MemberCount, len(sl.Members))
		}
		if len(sl.OwnerReferences) != 1 || sl.OwnerReferences[0].UID != cg.UID {
			t.Errorf("slice %s is not owned by its ChatGroup: %v", sl.Name, sl.OwnerReferences)
		}
		for _, m := range sl.Members {
			seen[m.UserID]++
		}
	}
	for _, m := range want {
		if seen[m.UserID] != 1 {
			t.Errorf("member %s listed %d times, want once", m.UserID, seen[m.UserID])
		}
		delete(seen, m.UserID)
	}
	if len(seen) > 0 {
		t.Errorf("slices list %d members that are not in the group, e.g. %v", len(seen), seen)
	}
}

func TestStore_slicesListEveryMemberOnce(t *testing.T) {
	env := testsupport.Start(t)
	ctx := context.Background()
	cg := newGroup(ctx, t, env.Client, "slices-once")
	store := memberslice.Store{Client: env.Client, Reader: env.Client}

	all := members(0, 1000)
	n := memberslice.Count(len(all), 64)
	if err := store.Rewrite(ctx, cg, 1, n, 7, all); err != nil {
		t.Fatal(err)
	}
	cg.Status.MemberSlices = &imv1.MemberSlicesStatus{Generation: 1, Slices: n, Seq: 7}
	checkListed(ctx, t, env.Client, cg, all)

	// The next commit adds 10 members and removes 5: status first, then
	// the slices; Load sees the change before the slices are written.
	next := append(members(5, 995), members(2000, 10)...)
	cg.Status.MemberSlices = &imv1.MemberSlicesStatus{Generation: 1, Slices: n, Seq: 8,
		Added: members(2000, 10), Removed: []string{"user-00000", "user-00001", "user-00002", "user-00003", "user-00004"}}
	loaded, err := store.Load(ctx, cg)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != len(next) {
		t.Fatalf("Load before the slices are written: %d members, want %d", len(loaded), len(next))
	}
	for range 2 { // idempotent: the second pass changes nothing
		if err := store.Update(ctx, cg, loaded, memberslice.Changed(cg.Status.MemberSlices)); err != nil {
			t.Fatal(err)
		}
		checkListed(ctx, t, env.Client, cg, next)
	}

	// A new generation replaces the old one once the old is deleted.
	if err := store.Rewrite(ctx, cg, 2, 3, 9, next); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteOthers(ctx, cg, 2); err != nil {
		t.Fatal(err)
	}
	checkListed(ctx, t, env.Client, cg, next)
}

func TestStore_updateSkipsSlicesWrittenForALaterSeq(t *testing.T) {
	env := testsupport.Start(t)
	ctx := context.Background()
	cg := newGroup(ctx, t, env.Client, "slices-seq")
	store := memberslice.Store{Client: env.Client, Reader: env.Client}

	all := members(0, 10)
	if err := store.Rewrite(ctx, cg, 1, 1, 5, all); err != nil {
		t.Fatal(err)
	}
	// A writer that is behind (seq 4) must not undo what seq 5 wrote.
	cg.Status.MemberSlices = &imv1.MemberSlicesStatus{Generation: 1, Slices: 1, Seq: 4}
	if err := store.Update(ctx, cg, all[:3], []string{all[9].UserID}); err != nil {
		t.Fatal(err)
	}
	checkListed(ctx, t, env.Client, cg, all)
}
