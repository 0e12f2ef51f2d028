//go:build faults

package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/localcluster"
	"chatgroup.dev/chatgroup-operator/internal/managerproc"
	"chatgroup.dev/chatgroup-operator/internal/provider/providertest"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

const (
	crashNamespace = "faults-crash"
	crashGroupID   = "@TGS#crash"
	crashOwner     = "owner"
	// The manager keeps more than crashThreshold members in slices of
	// about crashFill members, so the 41 members of the test are sliced.
	crashThreshold = 16
	crashFill      = 8
	// crashTimeout bounds each wait for the manager or the slices.
	crashTimeout = 2 * time.Minute
)

// The manager, a separate process, is killed with SIGKILL after it stored
// a change in the ChatGroup status (the commit record) and before it wrote
// the member slice of the member who joined or quit: once during a join,
// once during a quit. Each time the next manager brings the slices up to
// date from the status when it starts: every member is listed exactly
// once, memberCount is exact, and nothing acknowledged is lost. The
// callback in flight at the kill was stored but never acknowledged; a
// provider resending it gets 200 and it is not applied twice.
func TestFault_managerKilledBetweenStatusAndSlicesConverges(t *testing.T) {
	r := startCrashRun(t)
	ep := r.receiver()
	members := map[string]bool{crashOwner: true}
	initial := []string{crashOwner}
	for i := range 40 {
		id := fmt.Sprintf("member-%02d", i)
		initial = append(initial, id)
		members[id] = true
	}
	// Acknowledged before the kills: they must survive them.
	r.send(ep, callbacks.Create, callbacks.Params{Owner: crashOwner, Users: initial})
	r.send(ep, callbacks.Join, callbacks.Params{Users: []string{"early"}})
	members["early"] = true
	r.waitForSlices(members)

	for _, change := range []crashChange{{callbacks.Join, "late"}, {callbacks.Quit, "member-01"}} {
		inFlight := r.build(ep, change.action, callbacks.Params{Users: []string{change.user}})
		applied := r.killDuring(ep, inFlight, change, members)

		r.proxy.Revive()
		r.start()
		begin := time.Now()
		r.waitForSlices(members)
		t.Logf("the slices listed all %d members %.1fs after the new manager was ready, with no new callback",
			len(members), time.Since(begin).Seconds())

		// Tencent may resend a callback that got no answer: a duplicate.
		r.deliver(ep, inFlight)
		if cg := r.group(); cg.Status.EventsApplied != applied || int(cg.Status.MemberCount) != len(members) {
			t.Errorf("the resent %s: eventsApplied %d, memberCount %d; want %d and %d (not applied twice)",
				change.action, cg.Status.EventsApplied, cg.Status.MemberCount, applied, len(members))
		}
	}
	// And the group goes on from there.
	r.send(ep, callbacks.Quit, callbacks.Params{Users: []string{"member-00"}})
	delete(members, "member-00")
	r.waitForSlices(members)
}

// crashChange is the change in flight at a kill: user joins or quits.
type crashChange struct {
	action callbacks.Action
	user   string
}

// killDuring arms the proxy and sends the callback of change, expecting
// the manager to be killed before it answers. It applies the change to
// members, checks that the kill came between the two writes and returns
// status.eventsApplied.
func (r *crashRun) killDuring(ep providertest.Endpoint, cb callbacks.Callback, change crashChange,
	members map[string]bool) int64 {
	r.t.Helper()
	crashed := r.proxy.Arm()
	if status, body, err := r.post(ep, cb); err == nil {
		r.t.Fatalf("the %s in flight was answered %d %s: the manager was not killed before its slice write",
			change.action, status, body)
	} else {
		r.t.Logf("the %s in flight got no answer, as a provider would see a crash: %v", change.action, err)
	}
	select {
	case <-crashed:
	case <-time.After(crashTimeout):
		r.t.Fatalf("the %s in flight failed, but the manager was never killed", change.action)
	}
	if change.action == callbacks.Join {
		members[change.user] = true
	} else {
		delete(members, change.user)
	}
	return r.checkKilledBetweenWrites(change, members)
}

// crashRun is the control plane, the proxy the manager reaches it
// through, and the manager process.
type crashRun struct {
	t      *testing.T
	env    *testsupport.Env
	proxy  *testsupport.CrashProxy
	opts   managerproc.Options
	starts int
	mgr    atomic.Pointer[managerproc.Manager]
	http   *http.Client
}

// startCrashRun starts the control plane, the proxy, and the manager
// built from this tree as a separate process.
func startCrashRun(t *testing.T) *crashRun {
	t.Helper()
	r := &crashRun{t: t, env: testsupport.Start(t), http: &http.Client{Timeout: crashTimeout}}
	dir := t.TempDir()
	r.proxy = testsupport.StartCrashProxy(t, r.env.Config, r.kill)
	r.opts = managerproc.Options{Binary: filepath.Join(dir, "manager"), Kubeconfig: filepath.Join(dir, "kubeconfig"),
		Args: []string{"--member-slice-threshold=" + strconv.Itoa(crashThreshold),
			"--member-slice-fill=" + strconv.Itoa(crashFill),
			// A loaded CI machine can be slow: every callback but the one
			// in flight at the kill must be acknowledged.
			"--callback-commit-budget=30s"}}
	if err := r.proxy.WriteKubeconfig(r.opts.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := managerproc.Build(t.Context(), testsupport.RepoRoot(), r.opts.Binary); err != nil {
		t.Fatal(err)
	}
	t.Logf("manager built in %.1fs", time.Since(begin).Seconds())
	t.Cleanup(r.stop)
	r.start()
	return r
}

// start starts a manager process through the proxy and waits until it is
// ready.
func (r *crashRun) start() {
	r.t.Helper()
	opts := r.opts
	var err error
	if opts.CallbackAddr, err = managerproc.FreeLoopbackAddr(); err != nil {
		r.t.Fatal(err)
	}
	if opts.ProbeAddr, err = managerproc.FreeLoopbackAddr(opts.CallbackAddr); err != nil {
		r.t.Fatal(err)
	}
	r.starts++
	opts.LogPath = filepath.Join(filepath.Dir(opts.Binary), "manager-"+strconv.Itoa(r.starts)+".log")
	begin := time.Now()
	m, err := managerproc.Start(context.Background(), opts)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mgr.Store(m)
	r.t.Logf("manager %d ready in %.1fs", r.starts, time.Since(begin).Seconds())
}

// kill is the proxy's crash: SIGKILL, and wait until the process is gone.
func (r *crashRun) kill() {
	if err := r.mgr.Load().Kill(); err != nil {
		r.t.Errorf("killing the manager: %v", err)
	}
	r.t.Log("manager killed with SIGKILL at its first slice write after a status write")
}

// stop stops the running manager and shows its logs if the test failed.
func (r *crashRun) stop() {
	if m := r.mgr.Load(); m != nil {
		if err := m.Stop(15 * time.Second); err != nil {
			r.t.Errorf("stopping the manager: %v", err)
		}
	}
	if !r.t.Failed() {
		return
	}
	for i := 1; i <= r.starts; i++ {
		path := filepath.Join(filepath.Dir(r.opts.Binary), "manager-"+strconv.Itoa(i)+".log")
		r.t.Logf("last lines of manager %d's log:\n%s", i, localcluster.Tail(path, 30))
	}
}

// receiver creates the Tencent receiver and waits until the manager made
// it Ready.
func (r *crashRun) receiver() providertest.Endpoint {
	r.t.Helper()
	ctx := context.Background()
	if err := testsupport.CreateNamespace(ctx, r.env.Client, crashNamespace); err != nil {
		r.t.Fatal(err)
	}
	rcv := testsupport.Receiver{Namespace: crashNamespace, Name: "crash", Provider: imv1.ProviderTencent,
		Token: "faults-crash-token-0123456789abcdef"}
	if _, err := rcv.Create(ctx, r.env.Client); err != nil {
		r.t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: crashNamespace, Name: "crash"}
	deadline := time.Now().Add(crashTimeout)
	for {
		ep, err := providertest.ForReceiver(ctx, r.env.Client, key)
		if err == nil {
			return ep
		}
		if time.Now().After(deadline) {
			r.t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // polling the outcome
	}
}

// build renders the one callback of a change of the group.
func (r *crashRun) build(ep providertest.Endpoint, a callbacks.Action, p callbacks.Params) callbacks.Callback {
	r.t.Helper()
	p.GroupID = crashGroupID
	cbs, err := ep.Sender.Build(a, p)
	if err != nil || len(cbs) != 1 {
		r.t.Fatalf("building %s: %d callbacks, %v; want one", a, len(cbs), err)
	}
	return cbs[0]
}

// send builds and delivers one callback.
func (r *crashRun) send(ep providertest.Endpoint, a callbacks.Action, p callbacks.Params) {
	r.t.Helper()
	r.deliver(ep, r.build(ep, a, p))
}

// deliver posts a callback, newly signed, and expects the provider's
// success reply, which the manager sends only once the event is stored.
func (r *crashRun) deliver(ep providertest.Endpoint, cb callbacks.Callback) {
	r.t.Helper()
	status, body, err := r.post(ep, cb)
	if err == nil && status == http.StatusOK {
		err = ep.Sender.CheckReply(body)
	} else if err == nil {
		err = fmt.Errorf("HTTP %d %s", status, body)
	}
	if err != nil {
		r.t.Fatalf("%s: %v", cb.Command, err)
	}
}

func (r *crashRun) post(ep providertest.Endpoint, cb callbacks.Callback) (int, []byte, error) {
	req, err := ep.Sender.Request(context.Background(), r.mgr.Load().CallbackURL, ep.Path, cb)
	if err != nil {
		return 0, nil, err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// group reads the ChatGroup from the API server.
func (r *crashRun) group() *imv1.ChatGroup {
	r.t.Helper()
	cg := &imv1.ChatGroup{}
	key := types.NamespacedName{Namespace: crashNamespace, Name: imv1.ChatGroupName(imv1.ProviderTencent,
		providertest.SampleAppID(imv1.ProviderTencent), crashGroupID)}
	if err := r.env.Client.Get(context.Background(), key, cg); err != nil {
		r.t.Fatal(err)
	}
	return cg
}

// listed returns how often each user is listed in the group's slices,
// selected by the group label as the docs say.
func (r *crashRun) listed(cg *imv1.ChatGroup) map[string]int {
	r.t.Helper()
	var list imv1.ChatGroupMemberSliceList
	if err := r.env.Client.List(context.Background(), &list, client.InNamespace(crashNamespace),
		client.MatchingLabels{imv1.GroupLabel: cg.Name}); err != nil {
		r.t.Fatal(err)
	}
	seen := map[string]int{}
	for _, sl := range list.Items {
		for _, m := range sl.Members {
			seen[m.UserID]++
		}
	}
	return seen
}

// checkKilledBetweenWrites asserts that the kill came between the two
// writes: the status records the change (memberCount, and the user in
// status.memberSlices.added or .removed), the slices do not yet.
func (r *crashRun) checkKilledBetweenWrites(change crashChange, members map[string]bool) int64 {
	r.t.Helper()
	cg := r.group()
	ms := cg.Status.MemberSlices
	joined := change.action == callbacks.Join
	recorded := ms != nil && (joined && slices.ContainsFunc(ms.Added, func(m imv1.GroupMember) bool { return m.UserID == change.user }) ||
		!joined && slices.Contains(ms.Removed, change.user))
	if !recorded {
		r.t.Fatalf("after the kill the status does not record the %s of %s: memberSlices %+v", change.action, change.user, ms)
	}
	seen := r.listed(cg)
	// The slices are one member behind: without the joined user, or still
	// with the one who quit.
	wantListed, wantSeen := len(members)-1, 0
	if !joined {
		wantListed, wantSeen = len(members)+1, 1
	}
	if int(cg.Status.MemberCount) != len(members) || seen[change.user] != wantSeen || len(seen) != wantListed {
		r.t.Fatalf("after the kill: memberCount %d, %s listed %d times, %d listed; want %d, %d and %d",
			cg.Status.MemberCount, change.user, seen[change.user], len(seen), len(members), wantSeen, wantListed)
	}
	r.t.Logf("killed between the writes: memberCount %d in the status, %d members in %d slices",
		cg.Status.MemberCount, len(seen), ms.Slices)
	return cg.Status.EventsApplied
}

// waitForSlices waits until the slices list exactly members, each once,
// and checks memberCount.
func (r *crashRun) waitForSlices(members map[string]bool) {
	r.t.Helper()
	deadline := time.Now().Add(crashTimeout)
	for {
		cg := r.group()
		seen := r.listed(cg)
		if exactlyOnce(seen, members) && int(cg.Status.MemberCount) == len(members) && cg.Status.MemberSlices != nil {
			return
		}
		if time.Now().After(deadline) {
			missing, extra := listingDiff(seen, members)
			r.t.Fatalf("the slices list %d users, memberCount %d, want %d; missing %v; listed twice or not members %v",
				len(seen), cg.Status.MemberCount, len(members), missing, extra)
		}
		time.Sleep(100 * time.Millisecond) // polling the outcome
	}
}

func exactlyOnce(seen map[string]int, members map[string]bool) bool {
	missing, extra := listingDiff(seen, members)
	return len(missing)+len(extra) == 0
}

// listingDiff returns the members not listed, and the users listed more
// than once or not members, each sorted.
func listingDiff(seen map[string]int, members map[string]bool) (missing, extra []string) {
	for id := range members {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range seen {
		if n != 1 || !members[id] {
			extra = append(extra, id)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}
