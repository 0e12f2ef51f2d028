package resync_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/memberslice"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim/openimtest"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
)

const (
	tencentAppID = "1400000000"
	tencentAdmin = "administrator"
	tencentKey   = "resync-test-sdk-secret-key"
)

func newTencent(t *testing.T) *tencenttest.FakeServer {
	fake := tencenttest.NewFakeServer(1400000000, tencentAdmin, tencentKey)
	t.Cleanup(fake.Close)
	return fake
}

// Callbacks the fake provider "dropped" (a join, a quit, an owner change
// and a disband) are repaired by an on-demand resync; the repaired
// disband runs the cleanup Job; each correction is an Event; Synced is
// True on the groups and the receiver.
func TestResync_repairsDroppedCallbacks(t *testing.T) {
	op := startOperator(t)
	fake := newTencent(t)
	op.cleanupTrigger()
	ep := op.receiver("tencent", imv1.ProviderTencent, tencentAppID, fake.URL, tencentAdmin, tencentKey, false)

	fake.SetGroup("@TGS#live", "Public", "live", "owner", "alice", "bob")
	op.send(ep, callbacks.Create, callbacks.Params{GroupID: "@TGS#live", GroupName: "live", Owner: "owner", Users: []string{"owner", "alice", "bob"}})
	fake.SetGroup("@TGS#gone", "Public", "gone", "owner", "carol")
	op.send(ep, callbacks.Create, callbacks.Params{GroupID: "@TGS#gone", GroupName: "gone", Owner: "owner", Users: []string{"owner", "carol"}})
	g := NewWithT(t)
	g.Eventually(func() []string { return memberIDs(&op.group(imv1.ProviderTencent, tencentAppID, "@TGS#live").Status) },
		timeout, interval).Should(Equal([]string{"alice", "bob", "owner"}))

	// Changes whose callbacks never arrive.
	fake.Truth.Update("@TGS#live", func(g *restfake.Group) {
		delete(g.Members, "alice")
		g.Members["dave"] = imv1.RoleMember
		g.Members["owner"] = imv1.RoleMember
		g.Members["bob"] = imv1.RoleOwner
		g.Owner = "bob"
	})
	fake.Truth.Update("@TGS#gone", func(g *restfake.Group) { g.Gone = true })

	rcv := op.requestPass("tencent", "1")
	g.Expect(rcv.Status.LastSync.Result).To(Equal(imv1.SyncSucceeded))
	g.Expect(rcv.Status.LastSync.Groups).To(BeEquivalentTo(2))

	live := op.group(imv1.ProviderTencent, tencentAppID, "@TGS#live")
	g.Expect(memberIDs(&live.Status)).To(Equal([]string{"bob", "dave", "owner"}))
	g.Expect(live.Status.Owner).To(Equal("bob"))
	g.Expect(live.Status.LastSync.Result).To(Equal(imv1.SyncSucceeded))
	var resyncKinds []imv1.EventKind
	for _, e := range live.Status.Journal {
		if e.Reason == imv1.LeaveResync {
			resyncKinds = append(resyncKinds, e.Kind)
		}
	}
	g.Expect(resyncKinds).To(ConsistOf(imv1.EventMembersJoined, imv1.EventMembersLeft, imv1.EventInfoChanged, imv1.EventOwnerChanged))

	gone := op.group(imv1.ProviderTencent, tencentAppID, "@TGS#gone")
	g.Expect(gone.Status.Disbanded).To(BeTrue())
	g.Eventually(func() int { return len(op.cleanupJobs(gone)) }, timeout, interval).Should(Equal(1),
		"the dropped disband runs the cleanup Job")

	g.Eventually(func() bool {
		cg := op.group(imv1.ProviderTencent, tencentAppID, "@TGS#live")
		return meta.IsStatusConditionTrue(cg.Status.Conditions, imv1.SyncedCondition)
	}, timeout, interval).Should(BeTrue())
	g.Eventually(func() int {
		var evs eventsv1.EventList
		g.Expect(op.c.List(context.Background(), &evs, client.InNamespace(op.ns))).To(Succeed())
		n := 0
		for _, e := range evs.Items {
			if e.Reason == "DriftCorrected" {
				n++
			}
		}
		return n
	}, timeout, interval).Should(Equal(5), "one Event per corrected drift: 4 on live, 1 on gone")

	// A second pass finds nothing to correct.
	rcv = op.requestPass("tencent", "2")
	g.Expect(rcv.Status.LastSync.Corrections).To(BeZero())
}

// A callback newer than the snapshot is never undone by it: while resync
// reads a group whose member left (callback dropped), the member joins
// again and that callback is stored; the resync's leave, stamped with the
// snapshot's start, is older than the join and loses.
func TestResync_callbackNewerThanSnapshotWins(t *testing.T) {
	op := startOperator(t)
	fake := newTencent(t)
	ep := op.receiver("tencent", imv1.ProviderTencent, tencentAppID, fake.URL, tencentAdmin, tencentKey, false)
	fake.SetGroup("@TGS#race", "Public", "race", "owner", "alice")
	op.send(ep, callbacks.Create, callbacks.Params{GroupID: "@TGS#race", GroupName: "race", Owner: "owner",
		Users: []string{"owner", "alice"}, EventTime: time.Now().Add(-time.Minute)})
	g := NewWithT(t)
	g.Eventually(func() []string { return memberIDs(&op.group(imv1.ProviderTencent, tencentAppID, "@TGS#race").Status) },
		timeout, interval).Should(Equal([]string{"alice", "owner"}))

	var raced atomic.Bool
	fake.Truth.BeforePage(func(groupID string, first int) {
		if groupID != "@TGS#race" || first != 0 || raced.Load() {
			return
		}
		raced.Store(true)
		// alice left (callback dropped), so the page served next lacks
		// her; then she joins again, after the snapshot started, and
		// that callback arrives while resync is still reading.
		fake.Truth.Update("@TGS#race", func(g *restfake.Group) { delete(g.Members, "alice") })
		next := time.Now().Truncate(time.Millisecond).Add(time.Millisecond) // Tencent times are milliseconds
		op.send(ep, callbacks.Join, callbacks.Params{GroupID: "@TGS#race", Users: []string{"alice"}, EventTime: next})
	})
	op.requestPass("tencent", "race")
	g.Expect(raced.Load()).To(BeTrue())
	cg := op.group(imv1.ProviderTencent, tencentAppID, "@TGS#race")
	g.Expect(memberIDs(&cg.Status)).To(Equal([]string{"alice", "owner"}), "the newer join callback was undone")
	for _, e := range cg.Status.Journal {
		g.Expect(e.Reason).NotTo(Equal(imv1.LeaveResync), "resync journaled %s", e.Kind)
	}
}

// A snapshot that cannot be read changes no status: Synced=False with the
// reason on the receiver and the group, members untouched.
func TestResync_failedSnapshotChangesNothing(t *testing.T) {
	op := startOperator(t)
	fake := newTencent(t)
	ep := op.receiver("tencent", imv1.ProviderTencent, tencentAppID, fake.URL, tencentAdmin, tencentKey, false)
	fake.SetGroup("@TGS#g", "Public", "g", "owner", "alice")
	op.send(ep, callbacks.Create, callbacks.Params{GroupID: "@TGS#g", GroupName: "g", Owner: "owner", Users: []string{"owner", "alice"}})
	g := NewWithT(t)
	g.Eventually(func() []string { return memberIDs(&op.group(imv1.ProviderTencent, tencentAppID, "@TGS#g").Status) },
		timeout, interval).Should(Equal([]string{"alice", "owner"}))
	before := op.group(imv1.ProviderTencent, tencentAppID, "@TGS#g").Status

	fake.Truth.Update("@TGS#g", func(g *restfake.Group) { delete(g.Members, "alice") })
	fake.Truth.Inject(restfake.Fault5xx, restfake.FaultMalformed, restfake.FaultUnknownCode) // op.attempts is 3
	rcv := op.requestPass("tencent", "fails")
	g.Expect(rcv.Status.LastSync.Result).To(Equal(imv1.SyncFailed))
	g.Expect(rcv.Status.LastSync.Message).To(ContainSubstring("99999"))
	g.Eventually(func() string {
		var r imv1.ChatReceiver
		g.Expect(op.c.Get(context.Background(), client.ObjectKeyFromObject(rcv), &r)).To(Succeed())
		if c := meta.FindStatusCondition(r.Status.Conditions, imv1.SyncedCondition); c != nil && c.Status == metav1.ConditionFalse {
			return c.Reason
		}
		return ""
	}, timeout, interval).Should(Equal(imv1.ResyncFailedReason))

	after := op.group(imv1.ProviderTencent, tencentAppID, "@TGS#g")
	g.Expect(after.Status.Members).To(Equal(before.Members))
	g.Expect(after.Status.LastSeq).To(Equal(before.LastSeq))
	g.Expect(after.Status.LastSync.Result).To(Equal(imv1.SyncFailed))

	// The next pass succeeds and repairs.
	op.requestPass("tencent", "works")
	g.Expect(memberIDs(&op.group(imv1.ProviderTencent, tencentAppID, "@TGS#g").Status)).To(Equal([]string{"owner"}))
}

// OpenIM: a group created over the REST API (no callback) is discovered,
// an invited member (no callback) is added, a dismissed group is
// disbanded, and one admin token serves every pass.
func TestResync_openIM(t *testing.T) {
	op := startOperator(t)
	fake := openimtest.NewFakeServer("openim-test-secret", "chatgroup-operator")
	t.Cleanup(fake.Close)
	fake.SetGroup("rest-made", "made over REST", "owner", "alice", "bob")
	fake.SetGroup("g1", "g1", "owner", "alice")
	ep := op.receiver("openim", imv1.ProviderOpenIM, "openim-test", fake.URL, "chatgroup-operator", "openim-test-secret", true)
	g := NewWithT(t)

	// The first pass discovered both groups.
	made := op.group(imv1.ProviderOpenIM, "openim-test", "rest-made")
	g.Expect(memberIDs(&made.Status)).To(Equal([]string{"alice", "bob", "owner"}))
	g.Expect(made.Status.Owner).To(Equal("owner"))
	g.Expect(made.Labels).To(HaveKeyWithValue("team", "chat"))

	op.send(ep, callbacks.Join, callbacks.Params{GroupID: "g1", Users: []string{"carol"}})
	fake.Truth.Update("g1", func(g *restfake.Group) {
		g.Members["carol"] = imv1.RoleMember
		g.Members["invited"] = imv1.RoleMember // OpenIM sends no callback for invitations
	})
	fake.Truth.Update("rest-made", func(g *restfake.Group) { g.Gone = true })
	g.Eventually(func() []string { return memberIDs(&op.group(imv1.ProviderOpenIM, "openim-test", "g1").Status) },
		timeout, interval).Should(ContainElement("carol"))

	op.requestPass("openim", "1")
	g.Expect(memberIDs(&op.group(imv1.ProviderOpenIM, "openim-test", "g1").Status)).To(Equal([]string{"alice", "carol", "invited", "owner"}))
	g.Expect(op.group(imv1.ProviderOpenIM, "openim-test", "rest-made").Status.Disbanded).To(BeTrue())
	op.requestPass("openim", "2")
	g.Expect(fake.TokensIssued()).To(Equal(1), "admin tokens are cached across passes")
}

// The annotation on a ChatGroup resyncs that group alone.
func TestResync_groupAnnotation(t *testing.T) {
	op := startOperator(t)
	fake := newTencent(t)
	ep := op.receiver("tencent", imv1.ProviderTencent, tencentAppID, fake.URL, tencentAdmin, tencentKey, false)
	for _, id := range []string{"@TGS#a", "@TGS#b"} {
		fake.SetGroup(id, "Public", id, "owner", "alice")
		op.send(ep, callbacks.Create, callbacks.Params{GroupID: id, GroupName: id, Owner: "owner", Users: []string{"owner", "alice"}})
	}
	g := NewWithT(t)
	g.Eventually(func() []string { return memberIDs(&op.group(imv1.ProviderTencent, tencentAppID, "@TGS#b").Status) },
		timeout, interval).Should(HaveLen(2))
	for _, id := range []string{"@TGS#a", "@TGS#b"} {
		fake.Truth.Update(id, func(g *restfake.Group) { g.Members["zed"] = imv1.RoleMember })
	}
	a := op.group(imv1.ProviderTencent, tencentAppID, "@TGS#a")
	patch := client.RawPatch("application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"`+imv1.ResyncRequestedAnnotation+`":"now"}}}`))
	g.Expect(op.c.Patch(context.Background(), a, patch)).To(Succeed())
	g.Eventually(func() string {
		s := op.group(imv1.ProviderTencent, tencentAppID, "@TGS#a").Status.LastSync
		if s == nil {
			return ""
		}
		return s.Requested
	}, timeout, interval).Should(Equal("now"))
	g.Expect(slices.Contains(memberIDs(&op.group(imv1.ProviderTencent, tencentAppID, "@TGS#a").Status), "zed")).To(BeTrue())
	g.Expect(slices.Contains(memberIDs(&op.group(imv1.ProviderTencent, tencentAppID, "@TGS#b").Status), "zed")).To(BeFalse())
}

// A large group keeps its members in ChatGroupMemberSlices, not in its
// status: resync reads them from the slices and repairs them like any
// other group's, instead of leaving members alone as for a truncated list.
func TestResync_slicedGroupIsRepaired(t *testing.T) {
	op := startOperator(t)
	fake := newTencent(t)
	ep := op.receiver("tencent", imv1.ProviderTencent, tencentAppID, fake.URL, tencentAdmin, tencentKey, false)

	users := []string{"owner"}
	for i := range 299 {
		users = append(users, fmt.Sprintf("user%03d", i))
	}
	fake.SetGroup("@TGS#big", "Public", "big", "owner", users...)
	op.send(ep, callbacks.Create, callbacks.Params{GroupID: "@TGS#big", GroupName: "big", Owner: "owner", Users: users})
	g := NewWithT(t)
	g.Eventually(func() bool {
		st := op.group(imv1.ProviderTencent, tencentAppID, "@TGS#big").Status
		return st.MemberCount == 300 && st.MemberSlices != nil
	}, timeout, interval).Should(BeTrue(), "the group is sliced")

	// A quit and a join whose callbacks never arrive.
	fake.Truth.Update("@TGS#big", func(g *restfake.Group) {
		delete(g.Members, "user007")
		g.Members["zed"] = imv1.RoleMember
	})
	rcv := op.requestPass("tencent", "1")
	g.Expect(rcv.Status.LastSync.Result).To(Equal(imv1.SyncSucceeded))
	g.Expect(rcv.Status.LastSync.Corrections).To(BeEquivalentTo(2), "one join and one leave, nothing else")

	cg := op.group(imv1.ProviderTencent, tencentAppID, "@TGS#big")
	g.Expect(cg.Status.MemberCount).To(BeEquivalentTo(300))
	members, err := memberslice.Store{Client: op.c, Reader: op.c}.Load(context.Background(), cg)
	g.Expect(err).NotTo(HaveOccurred())
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.UserID
	}
	want := slices.DeleteFunc(slices.Clone(users), func(u string) bool { return u == "user007" })
	want = append(want, "zed")
	slices.Sort(want)
	g.Expect(ids).To(Equal(want))

	// A second pass finds nothing to correct.
	rcv = op.requestPass("tencent", "2")
	g.Expect(rcv.Status.LastSync.Corrections).To(BeZero())
}
