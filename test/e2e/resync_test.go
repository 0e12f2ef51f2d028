//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
)

// The resync receiver: its own SDKAppID, so that it does not share groups
// with the sample Tencent receiver, and the sample trigger's label.
const (
	resyncReceiverName = "tencent-resync"
	resyncAppID        = 1400000001
	resyncAdmin        = "administrator"
	resyncKey          = "e2e-resync-sdk-secret-key"
)

// resyncReceiverYAML is the Secret and the ChatReceiver, with the fake
// REST server's URL and the SDKAppID as format arguments. The interval is
// an hour: after the first pass, only the annotation runs one.
const resyncReceiverYAML = `apiVersion: v1
kind: Secret
metadata:
  name: tencent-resync
stringData:
  token: e2e-resync-callback-token-0123456789
  key: ` + resyncKey + `
---
apiVersion: im.chatgroup.dev/v1alpha1
kind: ChatReceiver
metadata:
  name: ` + resyncReceiverName + `
spec:
  provider: Tencent
  appID: "%d"
  secretRef:
    name: tencent-resync
  groupLabels:
    chat.example.com/cleanup: "true"
  resync:
    endpoint: %s
    admin: ` + resyncAdmin + `
    secretRef:
      name: tencent-resync
    interval: 1h
`

// The operator, as installed, repairs from the provider's REST API what
// callbacks never delivered: a join whose callback was dropped appears
// after an on-demand resync, and a disband whose callback was dropped
// disbands the ChatGroup and runs the sample cleanup Job.
func TestOperator_resyncRepairsDroppedCallbacks(t *testing.T) {
	begin := time.Now()
	s := setUp(t)
	fake := tencenttest.NewFakeServer(resyncAppID, resyncAdmin, resyncKey)
	t.Cleanup(fake.Close)
	s.createResyncReceiver(t, fake.URL)
	g := s.group(t, resyncReceiverName, "@TGS#2RESYNCE2E", "Public")
	groups := []*group{g}

	step(t, "callbacks and the provider agree on a create and a join", func(t *testing.T) {
		fake.SetGroup(g.id, "Public", "e2e", owner, "bob", "peter")
		g.send(t, s, callbacks.Create, callbacks.Params{Owner: owner, Users: []string{"bob", "peter"}, GroupName: "e2e"})
		fake.Truth.Update(g.id, func(tg *restfake.Group) { tg.Members["jared"] = imv1.RoleMember })
		g.send(t, s, callbacks.Join, callbacks.Params{Operator: owner, Users: []string{"jared"}})
		s.expectTable(t, groups, row{members: "4", disbanded: "false", lastEvent: "MembersJoined"})
	})

	step(t, "a join whose callback was dropped appears after a requested resync", func(t *testing.T) {
		fake.Truth.Update(g.id, func(tg *restfake.Group) { tg.Members["tommy"] = imv1.RoleMember })
		s.expectTable(t, groups, row{members: "4", disbanded: "false", lastEvent: "MembersJoined"})
		s.requestResync(t)
		s.expectTable(t, groups, row{members: "5", disbanded: "false", lastEvent: "MembersJoined"})
		s.expectMembers(t, g, owner, "bob", "jared", "peter", "tommy")
		s.waitForSynced(t, g)
		s.waitForDriftEvent(t, g, "Resync found drift: MembersJoined (tommy)")
	})

	step(t, "a disband whose callback was dropped runs the cleanup Job", func(t *testing.T) {
		disbanded := time.Now()
		fake.Truth.Update(g.id, func(tg *restfake.Group) { tg.Gone = true })
		s.requestResync(t)
		s.expectTable(t, groups, row{members: "5", disbanded: "true", lastEvent: "Disbanded"})
		s.waitForDriftEvent(t, g, "Resync found drift: Disbanded")
		s.waitForCleanupJob(t, g, disbanded)
		_, err := s.cluster.Kubectl(t.Context(), "wait", "--for=condition="+imv1.CleanupSucceededCondition,
			"chatgroup/"+g.name, "--namespace", namespace, "--timeout=60s")
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
	})

	t.Logf("Resync end to end in %.1fs", time.Since(begin).Seconds())
}

// createResyncReceiver applies the Secret and the resync receiver and
// waits for the receiver's first pass (when it is created), so that every
// later pass is one the test requested.
func (s *suite) createResyncReceiver(t *testing.T, endpoint string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resync-receiver.yaml")
	NewWithT(t).Expect(os.WriteFile(path, []byte(fmt.Sprintf(resyncReceiverYAML, resyncAppID, endpoint)), 0o600)).To(Succeed())
	s.kubectl(t, "apply", "--namespace", namespace, "-f", path)
	s.waitForPass(t, "")
}

// requestResync annotates the receiver with a new value, as docs/resync.md
// tells users to, and waits until the pass it requested is recorded,
// succeeded, and corrected exactly the one drift the test made.
func (s *suite) requestResync(t *testing.T) {
	t.Helper()
	value := time.Now().UTC().Format(time.RFC3339Nano)
	s.kubectl(t, "annotate", "chatreceiver", resyncReceiverName, "--namespace", namespace, "--overwrite",
		imv1.ResyncRequestedAnnotation+"="+value)
	last := s.waitForPass(t, value)
	NewWithT(t).Expect(last.Result).To(Equal(imv1.SyncSucceeded), "resync pass %q: %s", value, last.Message)
	NewWithT(t).Expect(last.Corrections).To(Equal(int32(1)), "the pass corrected the one drift")
}

// waitForPass waits until the receiver records the pass that handled the
// annotation value (the empty value: the first pass) and returns it.
func (s *suite) waitForPass(t *testing.T, value string) *imv1.SyncStatus {
	t.Helper()
	key := types.NamespacedName{Namespace: namespace, Name: resyncReceiverName}
	var last *imv1.SyncStatus
	NewWithT(t).Eventually(func(gm Gomega) {
		var rcv imv1.ChatReceiver
		gm.Expect(s.admin.Get(t.Context(), key, &rcv)).To(Succeed())
		gm.Expect(rcv.Status.LastSync).NotTo(BeNil())
		gm.Expect(rcv.Status.LastSync.Requested).To(Equal(value))
		last = rcv.Status.LastSync
	}).WithTimeout(60*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), "resync pass %q", value)
	return last
}

// expectMembers checks the ChatGroup's member list.
func (s *suite) expectMembers(t *testing.T, g *group, want ...string) {
	t.Helper()
	NewWithT(t).Expect(s.statuses(t, []*group{g})[g.name].Members).To(ConsistOf(want))
}

// waitForSynced waits for the ChatGroup's Synced condition, which its
// reconciler derives from status.lastSync, to be True.
func (s *suite) waitForSynced(t *testing.T, g *group) {
	t.Helper()
	key := types.NamespacedName{Namespace: namespace, Name: g.name}
	NewWithT(t).Eventually(func(gm Gomega) {
		var cg imv1.ChatGroup
		gm.Expect(s.admin.Get(t.Context(), key, &cg)).To(Succeed())
		c := meta.FindStatusCondition(cg.Status.Conditions, imv1.SyncedCondition)
		gm.Expect(c).NotTo(BeNil())
		gm.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		gm.Expect(c.Reason).To(Equal(imv1.ResyncSucceededReason))
	}).WithTimeout(60*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), "Synced=True on %s", g.name)
}

// waitForDriftEvent waits for a DriftCorrected Event on the ChatGroup
// with the message.
func (s *suite) waitForDriftEvent(t *testing.T, g *group, message string) {
	t.Helper()
	NewWithT(t).Eventually(func(gm Gomega) {
		out, err := s.cluster.Kubectl(t.Context(), "get", "events", "--namespace", namespace,
			"--field-selector", "reason=DriftCorrected,involvedObject.kind=ChatGroup,involvedObject.name="+g.name,
			"--output=jsonpath={range .items[*]}{.message}{\"\\n\"}{end}")
		gm.Expect(err).NotTo(HaveOccurred())
		gm.Expect(strings.Split(string(out), "\n")).To(ContainElement(message), "events:\n%s", out)
	}).WithTimeout(60*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), "DriftCorrected Event on %s", g.name)
}
