package webhookserver_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

func TestServer_R7_futureEventTimeIsRejected(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	future := strings.Replace(tencentExitBody, "1670574414123", "253402300799000", 1) // 9999-12-31
	g.Expect(future).NotTo(Equal(tencentExitBody))
	rec := h.do(http.MethodPost, h.exitURL(), future)
	g.Expect(rec.Code).To(Equal(http.StatusBadRequest), rec.Body.String())
	g.Expect(rec.Body.String()).To(ContainSubstring(`"ActionStatus":"FAIL"`))
	g.Expect(rec.Body.String()).To(ContainSubstring("ahead of the server clock"))

	// Within the allowed skew, it is accepted.
	h.now = time.UnixMilli(1670574414123).Add(-5 * time.Minute)
	rec = h.do(http.MethodPost, h.exitURL(), tencentExitBody)
	g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())
}

func TestServer_K3_keyIsOverTheCanonicalEvent(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t)
	g.Expect(h.do(http.MethodPost, h.exitURL(), tencentExitBody).Code).To(Equal(http.StatusOK))
	variants := map[string]string{
		"escaped @":        strings.Replace(tencentExitBody, `"@TGS#2J4SZEAEL"`, `"\u0040TGS#2J4SZEAEL"`, 1),
		"numeric time":     strings.Replace(tencentExitBody, `"1670574414123"`, `1670574414123`, 1),
		"unknown field":    strings.Replace(tencentExitBody, `{`, `{"Extra":1,`, 1),
		"operationID only": tencentExitBody,
	}
	for name, body := range variants {
		h.now = h.now.Add(time.Second)
		g.Expect(body != tencentExitBody || name == "operationID only").To(BeTrue(), name)
		rec := h.do(http.MethodPost, h.exitURL(), body, "operationID", "op-"+name)
		g.Expect(rec.Code).To(Equal(http.StatusOK), name+": "+rec.Body.String())
		g.Expect(rec.Body.String()).To(ContainSubstring(`"ErrorInfo":"duplicate"`), name)
	}
	g.Expect(h.group(g, imv1.ProviderTencent, testAppID, "@TGS#2J4SZEAEL").Status.LastSeq).To(Equal(int64(1)))
}
