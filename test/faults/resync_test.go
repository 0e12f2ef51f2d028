//go:build faults

package faults

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim/openimtest"
	"chatgroup.dev/chatgroup-operator/internal/provider/providertest"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
	"chatgroup.dev/chatgroup-operator/internal/resync"
	"chatgroup.dev/chatgroup-operator/internal/resync/resynctest"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

const (
	resyncAdmin  = "administrator"
	resyncKey    = "faults-resync-sdk-secret-key"
	resyncGroups = 50
	resyncOps    = 2000
	resyncSeed   = 14
)

// lossyFake is the fake provider REST API a lossy scenario runs against.
type lossyFake struct {
	provider imv1.Provider
	appID    string
	url      string
	truth    *restfake.Truth
	// groupID names group i.
	groupID func(i int) string
	// apis are the REST calls a pass makes, logged with their counts.
	apis []string
}

func tencentFake(t *testing.T) lossyFake {
	fake := tencenttest.NewFakeServer(1400000000, resyncAdmin, resyncKey)
	t.Cleanup(fake.Close)
	return lossyFake{provider: imv1.ProviderTencent, appID: "1400000000", url: fake.URL, truth: fake.Truth,
		groupID: func(i int) string { return fmt.Sprintf("@TGS#fault%02d", i) },
		apis:    []string{tencent.APIGetGroupInfo, tencent.APIGetGroupMemberInfo, tencent.APIGetAppIDGroupList}}
}

func openimFake(t *testing.T) lossyFake {
	fake := openimtest.NewFakeServer(resyncKey, resyncAdmin)
	t.Cleanup(fake.Close)
	return lossyFake{provider: imv1.ProviderOpenIM, appID: "openim-faults", url: fake.URL, truth: fake.Truth,
		groupID: func(i int) string { return fmt.Sprintf("fault%02d", i) },
		apis:    []string{openim.PathGetGroupsInfo, openim.PathGetGroupMemberList, openim.PathGetGroups}}
}

// The fake provider applies 2,000 random membership changes (and some
// owner changes) over 50 groups, then disbands 10 of them. Only 70% of the
// callbacks are delivered, some twice, reordered within groups of ten;
// half the disbands are dropped. After one resync pass every ChatGroup
// equals the provider's truth (members, owner, disbanded) and every group
// whose disband was dropped has its cleanup Job. The same scenario, with
// the same seed, runs against the Tencent and the OpenIM fake.
func TestFault_resyncRepairsLossyCallbacks(t *testing.T) {
	env := testsupport.Start(t)
	t.Run("Tencent", func(t *testing.T) { lossyScenario(t, env, "faults-resync", tencentFake(t)) })
	t.Run("OpenIM", func(t *testing.T) { lossyScenario(t, env, "faults-resync-openim", openimFake(t)) })
}

func lossyScenario(t *testing.T, env *testsupport.Env, ns string, fake lossyFake) {
	ctx := context.Background()
	if err := testsupport.CreateNamespace(ctx, env.Client, ns); err != nil {
		t.Fatal(err)
	}
	// Cleanup Jobs are created as the trigger's ServiceAccount, default.
	if err := testsupport.AllowJobs(ctx, env.Client, ns, "default"); err != nil {
		t.Fatal(err)
	}
	url := startOperator(t, env, ns)
	ep := resyncReceiver(t, env.Client, ns, fake)

	rng := rand.New(rand.NewPCG(resyncSeed, 1))
	cbs, disbands := simulate(t, fake, rng)
	plan := deliverLossy(t, rng, ep, url, cbs, disbands)
	droppedDisbands := map[string]bool{}
	for _, i := range plan.Dropped {
		if cbs[i].Action == callbacks.Disband {
			droppedDisbands[cbs[i].Params.GroupID] = true
		}
	}
	t.Logf("callbacks: %d (50 creates, %d changes, 10 disbands), %d dropped, %d duplicated, %d deliveries, %d disbands dropped",
		len(cbs), resyncOps, len(plan.Dropped), len(plan.Duplicated), len(plan.Order), len(droppedDisbands))

	groups, members := drift(t, env.Client, ns, fake)
	t.Logf("drift before resync: %d of %d groups differ from the provider, %d member differences",
		groups, resyncGroups, members)
	if groups == 0 {
		t.Fatal("the lossy delivery caused no drift: the test tests nothing")
	}
	repairInOnePass(t, env.Client, ns, fake)
	waitForCleanupJobs(t, env.Client, ns, fake, droppedDisbands)
}

// repairInOnePass requests a resync pass and checks that afterwards no
// group differs from the provider's truth.
func repairInOnePass(t *testing.T, c client.Client, ns string, fake lossyFake) {
	t.Helper()
	before := make([]int, len(fake.apis))
	for i, api := range fake.apis {
		before[i] = fake.truth.Calls(api)
	}
	start := time.Now()
	rcv := requestPass(t, c, types.NamespacedName{Namespace: ns, Name: "resync"}, "faults")
	t.Logf("resync pass: %d groups read, %d corrections, result %s, %s from request to recorded outcome",
		rcv.Status.LastSync.Groups, rcv.Status.LastSync.Corrections, rcv.Status.LastSync.Result, time.Since(start).Round(time.Millisecond))
	for i, api := range fake.apis {
		t.Logf("REST calls of the pass: %s %d", api, fake.truth.Calls(api)-before[i])
	}
	if rcv.Status.LastSync.Result != imv1.SyncSucceeded {
		t.Fatalf("resync pass: %s: %s", rcv.Status.LastSync.Result, rcv.Status.LastSync.Message)
	}
	if groups, members := drift(t, c, ns, fake); groups != 0 {
		t.Fatalf("after one resync pass %d groups still differ (%d member differences)", groups, members)
	}
}

// startOperator runs the callback server, the reconcilers and resync for
// one namespace and returns the callback server's URL.
func startOperator(t *testing.T, env *testsupport.Env, ns string) string {
	t.Helper()
	fast := provider.Retry{Attempts: 4, Backoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	return resynctest.StartOperator(t, env, ns, resync.Options{Tick: 200 * time.Millisecond,
		NewClient: resynctest.ClientFactory(fast, 0)})
}

// resyncReceiver creates the receiver (resync every hour, discovery on)
// and a cleanup trigger, and waits for the receiver's first pass.
func resyncReceiver(t *testing.T, c client.Client, ns string, fake lossyFake) providertest.Endpoint {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "resync"},
			StringData: map[string]string{imv1.TokenKey: "faults-resync-token-0123456789abcdef", imv1.ResyncKeyKey: resyncKey}},
		&imv1.ChatReceiver{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "resync"},
			Spec: imv1.ChatReceiverSpec{Provider: fake.provider, AppID: fake.appID, SecretRef: imv1.SecretReference{Name: "resync"},
				GroupLabels: map[string]imv1.LabelValue{"team": "chat"},
				RateLimit:   &imv1.RateLimit{RequestsPerSecond: 100000, Burst: 100000},
				Resync: &imv1.ResyncSpec{Endpoint: fake.url, Admin: resyncAdmin, SecretRef: imv1.SecretReference{Name: "resync"},
					Interval: &metav1.Duration{Duration: time.Hour}, Discover: true}}},
		&imv1.ChatGroupTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cleanup"},
			Spec: imv1.ChatGroupTriggerSpec{On: []imv1.TriggerEvent{imv1.TriggerDisbanded},
				Selector: metav1.LabelSelector{MatchLabels: map[string]string{"team": "chat"}},
				JobTemplate: &batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0),
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
						Containers: []corev1.Container{{Name: "cleanup", Image: "busybox:1.36", Command: []string{"true"}}}}}}}}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	key := types.NamespacedName{Namespace: ns, Name: "resync"}
	var ep providertest.Endpoint
	deadline := time.Now().Add(time.Minute)
	for {
		var err error
		if ep, err = providertest.ForReceiver(ctx, c, key); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitPass(t, c, key, "")
	return ep
}

// simulate makes the changes to the fake's truth (Truth.Apply, as a user
// would) and returns the callbacks the provider would send for them, in
// order, and the disbanded groups, true for those whose disband callback
// is to be dropped.
func simulate(t *testing.T, fake lossyFake, rng *rand.Rand) ([]restfake.Change, map[string]bool) {
	t.Helper()
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var cbs []restfake.Change
	send := func(a callbacks.Action, p callbacks.Params) {
		at = at.Add(time.Millisecond)
		p.EventTime = at
		c := restfake.Change{Action: a, Params: p}
		if err := fake.truth.Apply(c); err != nil {
			t.Fatal(err)
		}
		cbs = append(cbs, c)
	}
	ids := make([]string, resyncGroups)
	for i := range ids {
		ids[i] = fake.groupID(i)
		owner := fmt.Sprintf("owner%02d", i)
		send(callbacks.Create, callbacks.Params{GroupID: ids[i], GroupName: ids[i], Owner: owner, Users: []string{owner, "u00"}})
	}
	for changes := 0; changes < resyncOps; {
		id := ids[rng.IntN(len(ids))]
		g, _ := fake.truth.Get(id)
		user := fmt.Sprintf("u%02d", rng.IntN(40))
		_, member := g.Members[user]
		switch {
		case rng.IntN(20) == 0 && member:
			send(callbacks.Owner, callbacks.Params{GroupID: id, Owner: user, PreviousOwner: g.Owner})
		case member && user != g.Owner:
			send(callbacks.Quit, callbacks.Params{GroupID: id, Users: []string{user}})
		case !member:
			send(callbacks.Join, callbacks.Params{GroupID: id, Users: []string{user}})
		default:
			continue
		}
		changes++
	}
	dropped := map[string]bool{}
	for i, id := range ids[:10] {
		g, _ := fake.truth.Get(id)
		send(callbacks.Disband, callbacks.Params{GroupID: id, GroupName: id, Owner: g.Owner})
		dropped[id] = i%2 == 0
	}
	return cbs, dropped
}

// lossy is how the fake provider loses callbacks: 70% are delivered, 10%
// of those twice, each window of ten shuffled; a disband is dropped when
// chosen, and delivered otherwise.
func lossy(cbs []restfake.Change, disbands map[string]bool) restfake.Loss {
	return restfake.Loss{Drop: 0.3, Duplicate: 0.1, Window: 10, Rule: func(i int) restfake.DropRule {
		switch {
		case cbs[i].Action != callbacks.Disband:
			return restfake.DropMaybe
		case disbands[cbs[i].Params.GroupID]:
			return restfake.DropAlways
		}
		return restfake.DropNever
	}}
}

// deliverLossy delivers the callbacks as the lossy fake provider does,
// from 8 senders; it returns the plan it followed.
func deliverLossy(t *testing.T, rng *rand.Rand, ep providertest.Endpoint, url string, cbs []restfake.Change,
	disbands map[string]bool) restfake.Plan {
	t.Helper()
	out, plan := restfake.Deliver(rng, lossy(cbs, disbands), cbs)
	work := make(chan restfake.Change)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for range 8 {
		wg.Go(func() {
			for cb := range work {
				if err := deliver(ep, url, cb); err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	for _, cb := range out {
		work <- cb
	}
	close(work)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d callbacks refused, first: %s", len(failures), failures[0])
	}
	return plan
}

// deliver sends one callback. A duplicate signed in the same second is a
// replay to the server, refused with 401; that is a delivery too. A 503
// (not stored within the commit budget under this load) is what a
// provider sees as a failed callback that it never resends; the server
// goes on retrying it, and resync must converge either way.
func deliver(ep providertest.Endpoint, url string, cb restfake.Change) error {
	built, err := ep.Sender.Build(cb.Action, cb.Params)
	if err != nil {
		return err
	}
	for _, b := range built {
		req, err := ep.Sender.Request(context.Background(), url, ep.Path, b)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK, http.StatusUnauthorized, http.StatusServiceUnavailable:
		default:
			return fmt.Errorf("%s %s: HTTP %d %s", cb.Action, cb.Params.GroupID, resp.StatusCode, body)
		}
	}
	return nil
}

// drift compares every group of the truth with its ChatGroup and returns
// the groups that differ and the member differences.
func drift(t *testing.T, c client.Client, ns string, fake lossyFake) (groups, members int) {
	t.Helper()
	for _, id := range fake.truth.IDs() {
		want, _ := fake.truth.Get(id)
		cg := &imv1.ChatGroup{}
		err := c.Get(context.Background(), types.NamespacedName{Namespace: ns,
			Name: imv1.ChatGroupName(fake.provider, fake.appID, id)}, cg)
		if err != nil {
			groups++
			members += len(want.Members)
			continue
		}
		wantIDs := make([]string, 0, len(want.Members))
		for u := range want.Members {
			wantIDs = append(wantIDs, u)
		}
		slices.Sort(wantIDs)
		var have []string
		for _, m := range cg.Status.Members {
			have = append(have, m.UserID)
		}
		diff := symmetricDiff(wantIDs, have)
		if want.Gone {
			diff = 0 // the provider keeps no members for a gone group
		}
		if diff > 0 || cg.Status.Disbanded != want.Gone || (!want.Gone && cg.Status.Owner != want.Owner) {
			groups++
			members += diff
		}
	}
	return groups, members
}

func symmetricDiff(a, b []string) int {
	n := 0
	for _, x := range a {
		if !slices.Contains(b, x) {
			n++
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			n++
		}
	}
	return n
}

// requestPass annotates the receiver and waits for the pass.
func requestPass(t *testing.T, c client.Client, key types.NamespacedName, value string) *imv1.ChatReceiver {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, imv1.ResyncRequestedAnnotation, value)
	rcv := &imv1.ChatReceiver{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	if err := c.Patch(context.Background(), rcv, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
	return waitPass(t, c, key, value)
}

func waitPass(t *testing.T, c client.Client, key types.NamespacedName, value string) *imv1.ChatReceiver {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		rcv := &imv1.ChatReceiver{}
		if err := c.Get(context.Background(), key, rcv); err == nil && rcv.Status.LastSync != nil && rcv.Status.LastSync.Requested == value {
			return rcv
		}
		if time.Now().After(deadline) {
			t.Fatalf("no resync pass %q recorded", value)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitForCleanupJobs waits until every group whose disband was dropped is
// disbanded with its cleanup Job.
func waitForCleanupJobs(t *testing.T, c client.Client, ns string, fake lossyFake, dropped map[string]bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for id := range dropped {
		name := imv1.ChatGroupName(fake.provider, fake.appID, id)
		for {
			var jobs batchv1.JobList
			err := c.List(context.Background(), &jobs, client.InNamespace(ns), client.MatchingLabels{imv1.GroupLabel: name})
			cg := &imv1.ChatGroup{}
			gerr := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, cg)
			if err == nil && gerr == nil && len(jobs.Items) == 1 && meta.IsStatusConditionTrue(cg.Status.Conditions, imv1.DisbandedCondition) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("group %s (disband dropped): no cleanup Job", id)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("all %d groups whose disband was dropped have their cleanup Job", len(dropped))
}
