package tencent_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
)

const (
	appID = 1400000000
	admin = "administrator"
	key   = "test-secret-key-0123456789abcdef"
)

// newPair starts a fake and a client for it that retries fast.
func newPair(t *testing.T) (*tencenttest.FakeServer, *tencent.Client) {
	t.Helper()
	fake := tencenttest.NewFakeServer(appID, admin, key)
	t.Cleanup(fake.Close)
	c := tencent.NewClient(fake.URL, appID, admin, key)
	c.HTTP = &http.Client{Timeout: 300 * time.Millisecond}
	c.Retry = provider.Retry{Attempts: 5, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	c.PageSize = 100
	return fake, c
}

func users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

func ids(ms []groupstate.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.UserID
	}
	slices.Sort(out)
	return out
}

func TestClient_Snapshot(t *testing.T) {
	fake, c := newPair(t)
	fake.SetGroup("@TGS#big", "Private", "big", "u000", users("u", 250)...)
	fake.SetGroup("@TGS#community", "Community", "club", "c000", users("c", 130)...)
	fake.SetGroup("@TGS#broken", "Public", "broken", "b")
	fake.Truth.Update("@TGS#broken", func(g *restfake.Group) { g.ErrorCode = 10002 })

	snaps, err := c.Snapshot(context.Background(), []string{"@TGS#big", "@TGS#community", "@TGS#missing", "@TGS#broken"})
	if err != nil {
		t.Fatal(err)
	}
	big := snaps[0]
	if big.Gone || !big.MembersComplete || big.Err != nil || big.Type != "Work" || big.Owner != "u000" {
		t.Fatalf("big group snapshot = %+v", big)
	}
	if got := ids(big.Members); !slices.Equal(got, users("u", 250)) {
		t.Fatalf("big group: %d members read, want 250", len(got))
	}
	if big.Members[0].Role != imv1.RoleOwner {
		t.Errorf("owner's role = %q", big.Members[0].Role)
	}
	if got := ids(snaps[1].Members); !snaps[1].MembersComplete || !slices.Equal(got, users("c", 130)) {
		t.Fatalf("community group: complete=%v, %d members", snaps[1].MembersComplete, len(got))
	}
	if !snaps[2].Gone {
		t.Fatalf("missing group (10010) not gone: %+v", snaps[2])
	}
	var apiErr *provider.APIError
	if !errors.As(snaps[3].Err, &apiErr) || apiErr.Code != 10002 || snaps[3].Gone {
		t.Fatalf("per-group ErrorCode: %+v", snaps[3])
	}
	if n := fake.Truth.Calls(tencent.APIGetGroupInfo); n != 1 {
		t.Errorf("get_group_info called %d times, want 1 for the batch", n)
	}
	if n := fake.Truth.Calls(tencent.APIGetGroupMemberInfo); n != 3+2 {
		t.Errorf("get_group_member_info called %d times, want 3 pages + 2 pages", n)
	}
}

func TestClient_Snapshot_batchLimit(t *testing.T) {
	_, c := newPair(t)
	if _, err := c.Snapshot(context.Background(), users("g", 51)); err == nil {
		t.Fatal("51 groups in one get_group_info call accepted")
	}
}

func TestClient_retriesBadResponses(t *testing.T) {
	fake, c := newPair(t)
	fake.SetGroup("@TGS#g", "Public", "g", "o", "a", "b")
	fake.Truth.Inject(restfake.Fault5xx, restfake.FaultMalformed, restfake.FaultTimeout, restfake.FaultUnknownCode)
	var codes []string
	c.Retry.OnError = func(err error) { codes = append(codes, provider.ErrorCode(err)) }
	snaps, err := c.Snapshot(context.Background(), []string{"@TGS#g"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(snaps[0].Members); !slices.Equal(got, []string{"a", "b", "o"}) {
		t.Fatalf("members = %v", got)
	}
	want := []string{"502", "malformed", "transport", "99999"}
	if !slices.Equal(codes, want) {
		t.Fatalf("errors seen = %v, want %v", codes, want)
	}
}

// A 429 or 503 with Retry-After (seconds or an HTTP date) is tried again
// no sooner than it asks, though the client's own backoff is milliseconds.
func TestClient_honoursRetryAfter(t *testing.T) {
	restfake.CheckRetryAfter(t, func(t *testing.T, fault restfake.Fault) (*restfake.Truth, string) {
		fake, c := newPair(t)
		fake.SetGroup("@TGS#g", "Public", "g", "o", "a")
		fake.Truth.Inject(fault)
		if _, err := c.Snapshot(context.Background(), []string{"@TGS#g"}); err != nil {
			t.Fatal(err)
		}
		return fake.Truth, tencent.APIGetGroupInfo
	})
}

func TestClient_givesUp(t *testing.T) {
	fake, c := newPair(t)
	c.Retry.Attempts = 3
	fake.Truth.Inject(restfake.Fault5xx, restfake.Fault5xx, restfake.Fault5xx, restfake.Fault5xx)
	_, err := c.Snapshot(context.Background(), []string{"@TGS#g"})
	var apiErr *provider.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != http.StatusBadGateway {
		t.Fatalf("err = %v, want the 502 after 3 attempts", err)
	}
	if n := fake.Truth.Calls(tencent.APIGetGroupInfo); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
}

func TestClient_wrongKeyIsPermanent(t *testing.T) {
	fake, c := newPair(t)
	c.Key = "wrong"
	_, err := c.Snapshot(context.Background(), []string{"@TGS#g"})
	var apiErr *provider.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 70003 || apiErr.Retryable {
		t.Fatalf("err = %v, want a permanent 70003", err)
	}
	if n := fake.Truth.Calls(tencent.APIGetGroupInfo); n != 1 {
		t.Fatalf("%d calls, want 1 (no retry)", n)
	}
}

func TestClient_regeneratesExpiredUserSig(t *testing.T) {
	fake, c := newPair(t)
	fake.SetGroup("@TGS#g", "Public", "g", "o")
	var mu sync.Mutex
	first := true
	c.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return time.Now().Add(-48 * time.Hour) // a UserSig that has expired
		}
		return time.Now()
	}
	var codes []string
	c.Retry.Attempts = 1
	c.Retry.OnError = func(err error) { codes = append(codes, provider.ErrorCode(err)) }
	if _, err := c.Snapshot(context.Background(), []string{"@TGS#g"}); err != nil {
		t.Fatalf("70001 not answered by a new UserSig: %v", err)
	}
	if n := fake.Truth.Calls(tencent.APIGetGroupInfo); n != 2 {
		t.Fatalf("%d calls, want 2 (expired, then renewed)", n)
	}
}

// A member leaving while the pages are read shifts the later pages; the
// client reads the list again rather than report a member missing.
func TestClient_Members_shiftingPages(t *testing.T) {
	fake, c := newPair(t)
	fake.SetGroup("@TGS#g", "Public", "g", "u000", users("u", 250)...)
	shifted := false
	fake.Truth.BeforePage(func(_ string, first int) {
		if first == 100 && !shifted {
			shifted = true
			fake.Truth.Update("@TGS#g", func(g *restfake.Group) { delete(g.Members, "u050") })
		}
	})
	ms, complete, err := c.Members(context.Background(), "@TGS#g", false)
	if err != nil || !complete {
		t.Fatalf("complete=%v err=%v", complete, err)
	}
	want := slices.DeleteFunc(users("u", 250), func(u string) bool { return u == "u050" })
	if got := ids(ms); !slices.Equal(got, want) {
		t.Fatalf("%d members, want 249 without u050", len(got))
	}
}

// A list that keeps changing is reported incomplete, never short.
func TestClient_Members_alwaysShifting(t *testing.T) {
	fake, c := newPair(t)
	fake.SetGroup("@TGS#g", "Public", "g", "u000", users("u", 250)...)
	n := 0
	fake.Truth.BeforePage(func(_ string, first int) {
		if first == 100 {
			n++
			fake.Truth.Update("@TGS#g", func(g *restfake.Group) { delete(g.Members, fmt.Sprintf("u%03d", n)) })
		}
	})
	_, complete, err := c.Members(context.Background(), "@TGS#g", false)
	if err != nil || complete {
		t.Fatalf("complete=%v err=%v, want an incomplete list", complete, err)
	}
}

func TestClient_Discover(t *testing.T) {
	fake, c := newPair(t)
	for _, id := range []string{"@TGS#a", "@TGS#b", "@TGS#c"} {
		fake.SetGroup(id, "Public", id, "o")
	}
	got, err := c.Discover(context.Background())
	if err != nil || !slices.Equal(got, []string{"@TGS#a", "@TGS#b", "@TGS#c"}) {
		t.Fatalf("Discover = %v, %v", got, err)
	}
}
