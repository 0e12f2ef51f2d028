package webhookserver_test

import (
	"context"
	"net/http"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// The tests in this file are named after the findings of the security
// audit they close.

// TestServer_L7_genericErrorBeforeAuthentication: an unsigned request to a
// receiver whose Secret cannot be read learns nothing about the Secret.
func TestServer_L7_genericErrorBeforeAuthentication(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	g.Expect(h.client.Delete(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "tencent"}})).To(Succeed())

	rec := h.do(http.MethodPost, h.exitURL(), tencentExitBody)
	g.Expect(rec.Code).To(Equal(http.StatusServiceUnavailable))
	g.Expect(rec.Body.String()).To(ContainSubstring(http.StatusText(http.StatusServiceUnavailable)))
	g.Expect(rec.Body.String()).NotTo(ContainSubstring("tencent"))
	g.Expect(rec.Body.String()).NotTo(ContainSubstring("not found"))
}

// TestServer_M6_controlCharactersInIDsAreRejected: an ID with a newline
// (or any control character) is refused with 400 in the provider's format,
// and nothing is stored.
func TestServer_M6_controlCharactersInIDsAreRejected(t *testing.T) {
	for name, id := range map[string]string{"newline": `eve\nadmin`, "NUL": `eve\u0000`, "escape": `eve\u001b[2J`, "line separator": "eve\u2028admin"} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			h := newHarness(t)
			body := `{"CallbackCommand":"Group.CallbackAfterMemberExit","GroupId":"@TGS#M6","Type":"Public","ExitType":"Quit","Operator_Account":"eve","ExitMemberList":[{"Member_Account":"` + id + `"}],"EventTime":1669872112000}`
			rec := h.do(http.MethodPost, h.exitURL(), body)
			g.Expect(rec.Code).To(Equal(http.StatusBadRequest), rec.Body.String())
			g.Expect(rec.Body.String()).To(ContainSubstring("control character"))
			g.Expect(rec.Body.String()).To(ContainSubstring(`"ActionStatus":"FAIL"`))
			var groups imv1.ChatGroupList
			g.Expect(h.client.List(context.Background(), &groups)).To(Succeed())
			g.Expect(groups.Items).To(BeEmpty())
		})
	}
}
