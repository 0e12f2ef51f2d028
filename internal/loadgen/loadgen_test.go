package loadgen

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
)

func TestNewPlan(t *testing.T) {
	g := NewWithT(t)
	w := Workload{Provider: imv1.ProviderTencent, Events: 1000, Groups: 10, HotGroups: 2, HotFraction: 0.9,
		LeaveFraction: 0.25, DuplicateRate: 0.5, ReorderWindow: 20, GroupPrefix: "p", Seed: 7}
	p, err := NewPlan(w)
	g.Expect(err).NotTo(HaveOccurred())
	again, _ := NewPlan(w)
	g.Expect(again.Deliveries).To(Equal(p.Deliveries), "a seed reproduces the plan")

	users := map[string]int{}
	hot := 0
	for _, ev := range p.Events {
		var body map[string]any
		g.Expect(json.Unmarshal(ev.Callback.Body, &body)).To(Succeed())
		g.Expect(body["CallbackCommand"]).To(Equal(ev.Callback.Command))
		g.Expect(ev.Phase).To(Equal(map[bool]int{false: 0, true: 1}[ev.Leave]))
		users[ev.User]++
		if ev.GroupID == "p-0" || ev.GroupID == "p-1" {
			hot++
		}
	}
	for u, n := range users {
		g.Expect(n).To(BeNumerically("<=", 2), "user %s joins once and leaves at most once", u)
	}
	g.Expect(hot).To(BeNumerically(">", 800), "hot groups get most events")
	for phase, ids := range p.Deliveries {
		for _, id := range ids {
			g.Expect(p.Events[id].Phase).To(Equal(phase), "phases keep joins before leaves")
		}
	}
	total := len(p.Deliveries[0]) + len(p.Deliveries[1])
	g.Expect(total).To(BeNumerically("~", 1.5*float64(len(p.Events)), 100), "about half are delivered twice")
}

// TestRunAndVerify sends a plan to a fake server that applies joins and
// leaves to an in-memory group, then checks Verify against it.
func TestRunAndVerify(t *testing.T) {
	g := NewWithT(t)
	p, err := NewPlan(Workload{Provider: imv1.ProviderOpenIM, Events: 200, Groups: 1, LeaveFraction: 0.5,
		DuplicateRate: 0.2, GroupPrefix: "g", Seed: 1})
	g.Expect(err).NotTo(HaveOccurred())

	var mu sync.Mutex
	members, applied := map[string]bool{}, map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		var body struct {
			Inviter string   `json:"inviterUserID"`
			User    string   `json:"userID"`
			Kicked  []string `json:"kickedUserIDs"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		defer mu.Unlock()
		applied[r.Header.Get("operationID")] = true
		switch {
		case strings.HasSuffix(r.URL.Path, "callbackAfterJoinGroupCommand"):
			members[body.Inviter] = true
		case len(body.Kicked) > 0:
			delete(members, body.Kicked[0])
		default:
			delete(members, body.User)
		}
	}))
	defer srv.Close()

	rep, err := Run(context.Background(), p, Target{BaseURLs: []string{srv.URL}, WebhookPath: "/callbacks/x"}, Options{Concurrency: 4})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.AckedEvents()).To(Equal(len(p.Events)))
	g.Expect(rep.Latencies).To(HaveLen(rep.Deliveries))

	cg := &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns"},
		Spec: imv1.ChatGroupSpec{Provider: imv1.ProviderOpenIM, GroupID: "g-0"}}
	for u := range members {
		cg.Status.Members = append(cg.Status.Members, imv1.GroupMember{UserID: u})
	}
	cg.Status.EventsApplied = int64(len(applied))
	scheme := runtime.NewScheme()
	_ = imv1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cg).Build()

	v, err := Verify(context.Background(), c, "ns", p, rep)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v.OK()).To(BeTrue(), v.String())

	// A member lost on the way is reported.
	cg.Status.Members = cg.Status.Members[1:]
	g.Expect(c.Update(context.Background(), cg)).To(Succeed())
	v, err = Verify(context.Background(), c, "ns", p, rep)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v.Lost).To(Equal(1))
}

func TestReport_Accepted(t *testing.T) {
	g := NewWithT(t)
	rep := &Report{Acked: []bool{true, false, false}, Queued: []bool{false, true, false}}
	g.Expect(rep.Accepted().Acked).To(Equal([]bool{true, true, false}), "200 or 503 counts as accepted")
	g.Expect(rep.Acked).To(Equal([]bool{true, false, false}), "the report itself is unchanged")
	g.Expect(rep.Unanswered()).To(Equal(1))
}

func TestVerify_queuedJoinMayBeStale(t *testing.T) {
	// u1 joined (answered 503, committed later) and left (200): if the
	// leave was committed first, the join is stale and not counted.
	plan := &Plan{Workload: Workload{Provider: imv1.ProviderOpenIM, GroupPrefix: "p"}, Events: []Event{
		{ID: 0, GroupID: "p-0", User: "u1"},
		{ID: 1, GroupID: "p-0", User: "u1", Leave: true},
	}}
	cg := &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns"},
		Spec:   imv1.ChatGroupSpec{Provider: imv1.ProviderOpenIM, GroupID: "p-0"},
		Status: imv1.ChatGroupStatus{EventsApplied: 1}}
	scheme := runtime.NewScheme()
	NewWithT(t).Expect(imv1.AddToScheme(scheme)).To(Succeed())
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cg).Build()

	for name, tc := range map[string]struct {
		rep          *Report
		undercounted int
	}{
		"a join answered 503 may be stale":     {&Report{Acked: []bool{false, true}, Queued: []bool{true, false}}, 0},
		"a join answered 200 is applied first": {&Report{Acked: []bool{true, true}, Queued: []bool{false, false}}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := Verify(context.Background(), c, "ns", plan, tc.rep.Accepted())
			NewWithT(t).Expect(err).NotTo(HaveOccurred())
			NewWithT(t).Expect(v.Undercounted).To(Equal(tc.undercounted), "%s", v)
		})
	}
}

// The changes a plan gives a fake provider end in exactly the members its
// events leave behind: everyone who joined and did not leave.
func TestPlan_changesEndInTheFinalMembers(t *testing.T) {
	g := NewWithT(t)
	p, err := NewPlan(Workload{Provider: imv1.ProviderTencent, Events: 500, Groups: 7, LeaveFraction: 0.4,
		GroupPrefix: "c", Seed: 3})
	g.Expect(err).NotTo(HaveOccurred())
	want := map[string]map[string]imv1.MemberRole{}
	for _, ev := range p.Events {
		if want[ev.GroupID] == nil {
			want[ev.GroupID] = map[string]imv1.MemberRole{}
		}
		if ev.Leave {
			delete(want[ev.GroupID], ev.User)
		} else {
			want[ev.GroupID][ev.User] = imv1.RoleMember
		}
	}
	truth := restfake.NewTruth()
	for _, c := range p.Changes() {
		g.Expect(truth.Apply(c)).To(Succeed())
	}
	g.Expect(truth.IDs()).To(ConsistOf(slices.Collect(maps.Keys(want))))
	for id, members := range want {
		got, _ := truth.Get(id)
		g.Expect(got.Members).To(Equal(members), "group %s", id)
	}
}
