package v1alpha1

import (
	"strings"
	"testing"
)

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

func TestChatGroupName_N1_separatorsCannotCollide(t *testing.T) {
	a := ChatGroupName(ProviderOpenIM, "prod/", "g1")
	b := ChatGroupName(ProviderOpenIM, "prod", "/g1")
	if a == b {
		t.Fatalf("two groups share the name %q", a)
	}
}

func TestChatGroupName_N3_hashHasAtLeast64Bits(t *testing.T) {
	long := ChatGroupName(ProviderTencent, "1400000000", "@TGS#abcdefghijklmnopqrstuvwxyz0123456789abcdefghij")
	if len(long) > 63 {
		t.Fatalf("%q is longer than a DNS label", long)
	}
	hash := long[len(long)-20:]
	for _, r := range hash {
		if !strings.ContainsRune("0123456789abcdef", r) {
			t.Fatalf("%q does not end in 20 hex digits (80 bits)", long)
		}
	}
	if long[len(long)-21] != '-' {
		t.Fatalf("%q: the hash is not its own segment", long)
	}
}
