package webhookserver_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim/openimtest"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
	. "chatgroup.dev/chatgroup-operator/webhookserver"
)

// slowMachineCommitBudget is the commit budget of tests that expect every
// callback to be acknowledged.
const slowMachineCommitBudget = 30 * time.Second

// startManager runs a manager with only the callback server, as one replica
// would, and returns the server's base URL.
func startManager(t *testing.T, env *testsupport.Env) string {
	t.Helper()
	opts := DefaultOptions()
	// These tests check what is stored; a loaded CI machine must not turn a
	// slow commit into a 503. The reply on a missed budget is tested in
	// server_test.go.
	opts.CommitBudget = slowMachineCommitBudget
	r, err := testsupport.StartCallbackServer(env.Config, env.Scheme, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return r.URL
}

// setUpReceivers creates a namespace with a Tencent and an OpenIM receiver.
// Their status is set here as the ChatReceiver reconciler would.
func setUpReceivers(t *testing.T, env *testsupport.Env, ns string) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(testsupport.CreateNamespace(ctx, env.Client, ns)).To(Succeed())
	for _, r := range []testsupport.Receiver{
		{Name: "tencent", Provider: imv1.ProviderTencent, Token: tencentToken},
		{Name: "openim", Provider: imv1.ProviderOpenIM, Token: openIMToken},
	} {
		r.Namespace = ns
		_, err := r.Create(ctx, env.Client)
		g.Expect(err).NotTo(HaveOccurred())
	}
}

func tencentPost(g Gomega, baseURL, ns, command, body string) string {
	sender := tencenttest.Sender{AppID: testAppID, Token: tencentToken}
	url, err := sender.URL(baseURL, imv1.WebhookPath(ns, "tencent", tencentToken), command, time.Now())
	g.Expect(err).NotTo(HaveOccurred())
	return post(g, url, body, "")
}

func post(g Gomega, url, body, operationID string) string {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if operationID != "" {
		req.Header.Set("operationID", operationID)
	}
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), string(reply))
	return string(reply)
}

func TestServer_integration(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := "callbacks"
	setUpReceivers(t, env, ns)
	baseURL := startManager(t, env)

	create := `{"CallbackCommand": "Group.CallbackAfterCreateGroup","GroupId" : "@TGS#2J4SZEAEL","Operator_Account": "group_root","Owner_Account": "leckie","Type": "Public","Name": "MyFirstGroup","MemberList": [{ "Member_Account": "bob" },{ "Member_Account": "peter" }],"EventTime":"1670574414000"}`
	join := `{"CallbackCommand": "Group.CallbackAfterNewMemberJoin","GroupId" : "@TGS#2J4SZEAEL","Type": "Public","JoinType": "Apply","Operator_Account": "leckie","NewMemberList": [{ "Member_Account": "jared" },{ "Member_Account": "tommy" }],"EventTime":"1670574414100"}`
	// The exit seed arrives before the join it follows: order must not matter.
	g.Expect(tencentPost(g, baseURL, ns, tencent.MemberExit, tencentExitBody)).To(ContainSubstring(`"ActionStatus":"OK"`))
	g.Expect(tencentPost(g, baseURL, ns, tencent.CreateGroup, create)).To(ContainSubstring(`"ErrorInfo":"applied"`))
	g.Expect(tencentPost(g, baseURL, ns, tencent.NewMemberJoin, join)).To(ContainSubstring(`"ErrorInfo":"stale"`))

	// The reply came after the commit: the API server already has it.
	cg := &imv1.ChatGroup{}
	key := types.NamespacedName{Namespace: ns, Name: imv1.ChatGroupName(imv1.ProviderTencent, testAppID, "@TGS#2J4SZEAEL")}
	g.Expect(env.Client.Get(ctx, key, cg)).To(Succeed())
	g.Expect(memberIDs(&cg.Status)).To(Equal([]string{"bob", "leckie", "peter"}))
	g.Expect(cg.Status.Name).To(Equal("MyFirstGroup"))
	g.Expect(cg.Status.Departed).To(HaveLen(2))

	openim := baseURL + imv1.WebhookPath(ns, "openim", openIMToken)
	post(g, openim+"/callbackAfterCreateGroupCommand", `{"callbackCommand":"callbackAfterCreateGroupCommand","groupID":"3188466436","groupName":"g1","notification":"","introduction":"","faceURL":"","ownerUserID":"u1","createTime":1700000000000,"memberCount":3,"ex":"","status":0,"creatorUserID":"u1","groupType":2,"needVerification":0,"lookMemberInfo":0,"applyMemberFriend":0,"notificationUpdateTime":0,"notificationUserID":"","initMemberList":[{"userID":"u1","roleLevel":100},{"userID":"u2","roleLevel":20},{"userID":"u3","roleLevel":20},{"userID":"u1","roleLevel":20}]}`, "op1")
	post(g, openim+"/callbackAfterDisMissGroupCommand", `{"callbackCommand":"callbackAfterDisMissGroupCommand","groupID":"3188466436","ownerID":"u1","groupType":"\u0002","membersID":[]}`, "op2")
	g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: imv1.ChatGroupName(imv1.ProviderOpenIM, openimtest.SampleAppID, "3188466436")}, cg)).To(Succeed())
	g.Expect(cg.Status.Disbanded).To(BeTrue())
	g.Expect(cg.Status.Type).To(Equal("Work"))
	g.Expect(cg.Status.MemberCount).To(Equal(int32(3)))
}

// TestServer_twoReplicas runs two managers (two callback servers) writing
// the same groups concurrently: every acknowledged event must be stored
// exactly once.
func TestServer_twoReplicas(t *testing.T) {
	env := testsupport.Start(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := "replicas"
	setUpReceivers(t, env, ns)
	urls := []string{startManager(t, env), startManager(t, env)}

	const groups, usersPerGroup = 5, 30
	var wg sync.WaitGroup
	errs := make(chan error, groups*usersPerGroup*2)
	for gi := range groups {
		for u := range usersPerGroup {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := fmt.Sprintf(`{"callbackCommand":"callbackAfterJoinGroupCommand","operationID":"op-%d-%d","groupID":"G%d","reqMessage":"","joinSource":3,"inviterUserID":"user-%02d"}`, gi, u, gi, u)
				// Every event is delivered to both replicas: one stores it,
				// the other finds it a duplicate.
				for _, base := range urls {
					req, _ := http.NewRequest(http.MethodPost, base+imv1.WebhookPath(ns, "openim", openIMToken)+"/callbackAfterJoinGroupCommand", strings.NewReader(body))
					req.Header.Set("operationID", fmt.Sprintf("op-%d-%d", gi, u))
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						errs <- err
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						errs <- fmt.Errorf("status %d", resp.StatusCode)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	var list imv1.ChatGroupList
	g.Expect(env.Client.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	g.Expect(list.Items).To(HaveLen(groups))
	for _, cg := range list.Items {
		g.Expect(cg.Status.MemberCount).To(Equal(int32(usersPerGroup)), cg.Spec.GroupID)
		g.Expect(cg.Status.EventsApplied).To(Equal(int64(usersPerGroup)), "each event applied exactly once in %s", cg.Spec.GroupID)
	}
}

func memberIDs(st *imv1.ChatGroupStatus) []string {
	ids := []string{}
	for _, m := range st.Members {
		ids = append(ids, m.UserID)
	}
	return ids
}
