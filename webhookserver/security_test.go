package webhookserver_test

import (
	"context"
	"net/http"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
