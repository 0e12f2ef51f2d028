//go:build e2e

// Package e2e runs the operator the way it runs in production, against a
// full local control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and a kwok node): installed from dist/install.yaml, running
// as a separate process with the installer's ServiceAccount and RBAC,
// receiving callbacks over HTTP exactly as Tencent Cloud Chat and OpenIM
// send them, surviving a crash, starting the sample cleanup Job when a
// group is disbanded, and repairing by resync, from a fake Tencent REST
// API, the changes whose callbacks were dropped. Run it with
// `make test-e2e`.
package e2e

import (
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/localcluster"
	"chatgroup.dev/chatgroup-operator/internal/provider/providertest"
)

// namespace holds the sample receivers, the trigger and the ChatGroups.
const namespace = "chat-e2e"

// owner owns both groups of the scenario, creates them and kicks.
const owner = "leckie"

func TestOperator_endToEnd(t *testing.T) {
	begin := time.Now()
	s := setUp(t)
	groups := []*group{
		s.group(t, "tencent", "@TGS#2J4SZEAEL", "Public"),
		s.group(t, "openim", "3188466436", "Work"),
	}

	step(t, "a create callback makes a ChatGroup with the owner and the initial members", func(t *testing.T) {
		for _, g := range groups {
			g.send(t, s, callbacks.Create, callbacks.Params{Owner: owner, Users: []string{"bob", "peter"}, GroupName: "e2e"})
		}
		s.expectTable(t, groups, row{members: "3", disbanded: "false", lastEvent: "Created"})
	})

	var joins map[*group][]callbacks.Callback
	step(t, "join callbacks add members", func(t *testing.T) {
		joins = map[*group][]callbacks.Callback{}
		for _, g := range groups {
			joins[g] = g.send(t, s, callbacks.Join, callbacks.Params{Operator: owner, Users: []string{"jared", "tommy"}})
		}
		s.expectTable(t, groups, row{members: "5", disbanded: "false", lastEvent: "MembersJoined"})
	})

	step(t, "a crashed operator restarts without losing or repeating anything", func(t *testing.T) {
		before := s.statuses(t, groups)
		s.killManager(t)
		s.startManager(t)
		gm := NewWithT(t)
		gm.Expect(s.statuses(t, groups)).To(Equal(before), "nothing was lost")

		// The platforms may deliver again what was sent before the crash:
		// the dedupe keys live in the ChatGroup status, so the restarted
		// operator acknowledges the duplicates without applying them.
		for _, g := range groups {
			for _, cb := range joins[g] {
				g.deliver(t, s, cb)
			}
		}
		gm.Expect(s.statuses(t, groups)).To(Equal(before), "duplicates were not applied again")
	})

	step(t, "quit and kick callbacks remove members", func(t *testing.T) {
		for _, g := range groups {
			g.send(t, s, callbacks.Quit, callbacks.Params{Users: []string{"peter"}})
		}
		s.expectTable(t, groups, row{members: "4", disbanded: "false", lastEvent: "MembersLeft"})
		for _, g := range groups {
			g.send(t, s, callbacks.Kick, callbacks.Params{Operator: owner, Users: []string{"tommy"}, Reason: "spam"})
		}
		s.expectTable(t, groups, row{members: "3", disbanded: "false", lastEvent: "MembersLeft"})
	})

	step(t, "a disband callback runs the sample cleanup Job to success", func(t *testing.T) {
		disbanded := time.Now()
		for _, g := range groups {
			g.send(t, s, callbacks.Disband, callbacks.Params{Owner: owner, Users: []string{owner, "bob", "jared"}, GroupName: "e2e"})
		}
		s.expectTable(t, groups, row{members: "3", disbanded: "true", lastEvent: "Disbanded"})
		for _, g := range groups {
			s.waitForCleanupJob(t, g, disbanded)
			_, err := s.cluster.Kubectl(t.Context(), "wait", "--for=condition="+imv1.CleanupSucceededCondition,
				"chatgroup/"+g.name, "--namespace", namespace, "--timeout=60s")
			NewWithT(t).Expect(err).NotTo(HaveOccurred())
		}
	})

	t.Logf("End to end in %.1fs", time.Since(begin).Seconds())
}

// step runs one stage of the scenario as a subtest; later stages build on
// earlier ones, so the first failure ends the test.
func step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, fn) {
		t.FailNow()
	}
}

// group is one IM group, driven through one of the sample receivers.
type group struct {
	id        string
	groupType string // the TYPE column
	provider  imv1.Provider
	endpoint  providertest.Endpoint
	// name is the ChatGroup's derived name.
	name string
}

// group waits for a sample receiver to be Ready and returns a group that
// receives its callbacks.
func (s *suite) group(t *testing.T, receiver, id, groupType string) *group {
	t.Helper()
	var ep providertest.Endpoint
	key := types.NamespacedName{Namespace: namespace, Name: receiver}
	NewWithT(t).Eventually(func() error {
		var err error
		ep, err = providertest.ForReceiver(t.Context(), s.admin, key)
		return err
	}).WithTimeout(60*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), "receiver %s becomes Ready", key)
	provider := ep.Sender.Name()
	return &group{id: id, groupType: groupType, provider: provider, endpoint: ep,
		name: imv1.ChatGroupName(provider, ep.AppID, id)}
}

// send builds the callbacks for a change of this group and delivers each;
// it returns them so that they can be delivered again.
func (g *group) send(t *testing.T, s *suite, a callbacks.Action, p callbacks.Params) []callbacks.Callback {
	t.Helper()
	p.GroupID = g.id
	cbs, err := g.endpoint.Sender.Build(a, p)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	for _, cb := range cbs {
		g.deliver(t, s, cb)
	}
	return cbs
}

// deliver posts one callback and expects the provider's success reply,
// which the operator sends only once the event is stored.
func (g *group) deliver(t *testing.T, s *suite, cb callbacks.Callback) {
	t.Helper()
	gm := NewWithT(t)
	req, err := g.endpoint.Sender.Request(t.Context(), s.mgr.CallbackURL, g.endpoint.Path, cb)
	gm.Expect(err).NotTo(HaveOccurred())
	status, body := s.post(t, req)
	gm.Expect(status).To(Equal(200), "%s %s: %s", g.provider, cb.Command, body)
	gm.Expect(g.endpoint.Sender.CheckReply(body)).To(Succeed(), "%s %s", g.provider, cb.Command)
}

// groupStatus is what a restart must not change.
type groupStatus struct {
	MemberCount   int32
	EventsApplied int64
	Members       []string
}

func (s *suite) statuses(t *testing.T, groups []*group) map[string]groupStatus {
	t.Helper()
	out := map[string]groupStatus{}
	for _, g := range groups {
		var cg imv1.ChatGroup
		NewWithT(t).Expect(s.admin.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: g.name}, &cg)).To(Succeed())
		st := groupStatus{MemberCount: cg.Status.MemberCount, EventsApplied: cg.Status.EventsApplied}
		for _, m := range cg.Status.Members {
			st.Members = append(st.Members, m.UserID)
		}
		out[g.name] = st
	}
	return out
}

// waitForCleanupJob waits for the trigger's Job for g to succeed and logs
// how long after disbanded (when the callback was sent) that took.
func (s *suite) waitForCleanupJob(t *testing.T, g *group, disbanded time.Time) {
	t.Helper()
	selector := imv1.GroupLabel + "=" + g.name
	NewWithT(t).Eventually(func(gm Gomega) {
		out, err := s.cluster.Kubectl(t.Context(), "get", "jobs", "--namespace", namespace, "--selector", selector,
			"--output=jsonpath={.items[*].status.succeeded}")
		gm.Expect(err).NotTo(HaveOccurred())
		gm.Expect(string(out)).To(Equal("1"), "one Job, succeeded")
	}).WithTimeout(60*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "cleanup Job of %s", g.name)
	t.Logf("Cleanup Job of %s succeeded %.1fs after the disband callback was sent",
		g.name, time.Since(disbanded).Seconds())
}

// logFailure points at the logs when the test failed.
func logFailure(t *testing.T, c *localcluster.Cluster) {
	if !t.Failed() {
		return
	}
	t.Logf("Logs are in %s", c.LogDir)
	logs, _ := filepath.Glob(filepath.Join(c.LogDir, "manager-*.log"))
	for _, path := range logs {
		t.Logf("Last lines of %s:\n%s", filepath.Base(path), localcluster.Tail(path, 30))
	}
}
