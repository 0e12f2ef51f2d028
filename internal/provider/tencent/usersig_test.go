package tencent

import (
	"errors"
	"testing"
	"time"
)

// knownUserSig was produced by the official library,
// github.com/tencentyun/tls-sig-api-v2-golang v1.4.0:
// GenUserSig(1400000000, knownKey, "administrator", 86400) at Unix time
// 1795451760.
const (
	knownKey     = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	knownUserSig = "eAEArwBQ-3siVExTLnZlciI6IjIuMCIsIlRMUy5pZGVudGlmaWVyIjoiYWRtaW5pc3RyYXRvciIsIlRMUy5zZGthcHBpZCI6MTQwMDAwMDAwMCwiVExTLmV4cGlyZSI6ODY0MDAsIlRMUy50aW1lIjoxNzk1NDUxNzYwLCJUTFMuc2lnIjoibUJZYjdxNytWdy9sUGsvbWpZQlhUdDNGbHp6R0JpcWQ1cG9WSC9XN1JqWT0ifQoBAAD--wGwNGI_"
)

func TestGenUserSig_knownAnswer(t *testing.T) {
	got, err := GenUserSig(1400000000, knownKey, "administrator", time.Unix(1795451760, 0), 86400*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got != knownUserSig {
		t.Fatalf("GenUserSig = %s\nwant the official library's %s", got, knownUserSig)
	}
}

func TestVerifyUserSig(t *testing.T) {
	issued := time.Unix(1795451760, 0)
	if err := VerifyUserSig(1400000000, knownKey, "administrator", knownUserSig, issued.Add(time.Hour)); err != nil {
		t.Fatalf("official UserSig rejected: %v", err)
	}
	cases := []struct {
		name       string
		appID      uint64
		key, ident string
		sig        string
		now        time.Time
		want       error
	}{
		{"expired", 1400000000, knownKey, "administrator", knownUserSig, issued.Add(86401 * time.Second), ErrUserSigExpired},
		{"wrong key", 1400000000, "other", "administrator", knownUserSig, issued, ErrUserSigInvalid},
		{"wrong app", 1400000001, knownKey, "administrator", knownUserSig, issued, ErrUserSigInvalid},
		{"wrong identifier", 1400000000, knownKey, "admin", knownUserSig, issued, ErrUserSigInvalid},
		{"garbage", 1400000000, knownKey, "administrator", "not-a-sig", issued, ErrUserSigInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyUserSig(tc.appID, tc.key, tc.ident, tc.sig, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyUserSig = %v, want %v", err, tc.want)
			}
		})
	}
}
