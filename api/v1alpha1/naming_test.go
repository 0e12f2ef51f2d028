package v1alpha1

import "testing"

func TestMaskWebhookPath(t *testing.T) {
	path := WebhookPath("ns", "name", "token")
	for in, want := range map[string]string{
		path:                   path[:len(WebhookPathPrefix)+8] + "…",
		path + "/callbackX":    path[:len(WebhookPathPrefix)+8] + "…/callbackX",
		"/healthz":             "/healthz",
		WebhookPathPrefix + "": WebhookPathPrefix,
	} {
		if got := MaskWebhookPath(in); got != want {
			t.Errorf("MaskWebhookPath(%q) = %q, want %q", in, got, want)
		}
	}
}
