package commit_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/commit"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

// A committer that stops after it stored a commit in the ChatGroup status
// and before it wrote the member slices: the next committer brings the
// slices up to date from the status when it starts, without any new event.
// The crash is simulated in-process (the proxy stops forwarding the first
// committer's requests), which is fast and sees the committer alone;
// test/faults TestFault_managerKilledBetweenStatusAndSlicesConverges kills
// a manager process there for real.
func TestCommit_crashBetweenStatusAndSlicesConverges(t *testing.T) {
	env := testsupport.Start(t)
	proxy := testsupport.StartCrashProxy(t, env.Config, nil)
	viaProxy, err := client.New(&rest.Config{Host: proxy.URL}, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	first := commit.New(viaProxy, viaProxy, nil, logr.Discard(), testOptions())
	g := newTestGroup(t, env.Client, first, "crash")
	g.send(imv1.EventCreated, users(0, 60))
	g.check(true)

	// The next join is stored in the status; the manager dies at its
	// first slice write after that, before it could answer: from then on
	// the proxy forwards none of its requests.
	died := proxy.Arm()
	g.clock = g.clock.Add(time.Second)
	if _, err := first.Submit(g.target, groupstate.GroupEvent{Provider: imv1.ProviderTencent, AppID: g.target.Spec.AppID,
		GroupID: g.target.Spec.GroupID, Kind: imv1.EventMembersJoined, Members: users(500, 3), EventTime: g.clock,
		Key: "crash-join"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-died:
	case <-time.After(time.Minute):
		t.Fatal("the first manager never wrote a member slice after its status")
	}
	cg, seen := g.listed()
	if cg.Status.MemberCount != 63 || len(seen) != 60 {
		t.Fatalf("after the crash: memberCount %d, %d listed; want the status at 63 and the slices behind at 60",
			cg.Status.MemberCount, len(seen))
	}
	for _, m := range users(500, 3) {
		g.members[m.UserID] = true
	}

	// A new manager starts: it repairs the slices from the status.
	ctx, cancel := context.WithCancel(context.Background())
	second := commit.New(env.Client, env.Client, nil, logr.Discard(), testOptions())
	done := make(chan error, 1)
	go func() { done <- second.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for _, seen := g.listed(); len(seen) != 63; _, seen = g.listed() {
		if time.Now().After(deadline) {
			t.Fatalf("the slices list %d members a minute after the restart, want 63", len(seen))
		}
		time.Sleep(50 * time.Millisecond) // polling the outcome, not waiting for it to happen
	}
	g.check(true)

	// And the group goes on from there.
	g.cm = second
	g.send(imv1.EventMembersLeft, users(0, 2))
	g.check(true)
}
