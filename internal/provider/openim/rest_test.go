package openim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim/openimtest"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
)

const (
	secret = "test-server-secret"
	admin  = "chatgroup-operator"
)

func newPair(t *testing.T) (*openimtest.FakeServer, *openim.Client) {
	t.Helper()
	fake := openimtest.NewFakeServer(secret, admin, "imAdmin")
	t.Cleanup(fake.Close)
	c := openim.NewClient(fake.URL, admin, secret)
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
	fake.SetGroup("g-big", "big", "u000", users("u", 250)...)
	fake.SetGroup("g-dismissed", "old", "o", "a")
	fake.Truth.Update("g-dismissed", func(g *restfake.Group) { g.Gone = true })

	for range 3 {
		snaps, err := c.Snapshot(context.Background(), []string{"g-big", "g-dismissed", "g-unknown"})
		if err != nil {
			t.Fatal(err)
		}
		big := snaps[0]
		if big.Gone || !big.MembersComplete || big.Owner != "u000" || big.Name != "big" || big.Type != "Work" {
			t.Fatalf("big group = %+v", big)
		}
		if got := ids(big.Members); !slices.Equal(got, users("u", 250)) {
			t.Fatalf("%d members, want 250", len(got))
		}
		if !snaps[1].Gone {
			t.Fatal("status 2 (dismissed) not gone")
		}
		if !snaps[2].Gone {
			t.Fatal("an ID left out of groupInfos not gone")
		}
	}
	if n := fake.TokensIssued(); n != 1 {
		t.Fatalf("%d admin tokens fetched for 3 passes, want 1 (cached)", n)
	}
	if n := fake.Truth.Calls(openim.PathGetGroupMemberList); n != 3*3 {
		t.Fatalf("%d member pages, want 3 per pass (1-based, 100 a page)", n)
	}
}

// Another backend fetching a token for the same admin demotes ours; once
// it has expired (1507) the client fetches a new one and carries on.
func TestClient_refreshesDemotedToken(t *testing.T) {
	fake, c := newPair(t)
	fake.SetGroup("g", "g", "o", "a")
	fake.DemotedGrace = 0
	if _, err := c.Snapshot(context.Background(), []string{"g"}); err != nil {
		t.Fatal(err)
	}
	other := openim.NewClient(fake.URL, admin, secret)
	if _, err := other.Snapshot(context.Background(), []string{"g"}); err != nil {
		t.Fatal(err)
	}
	c.Retry.Attempts = 1
	if _, err := c.Snapshot(context.Background(), []string{"g"}); err != nil {
		t.Fatalf("1507 not answered by a new token: %v", err)
	}
	if c.TokensIssued != 2 {
		t.Fatalf("client fetched %d tokens, want 2", c.TokensIssued)
	}
}

func TestClient_wrongSecretIsPermanent(t *testing.T) {
	fake, c := newPair(t)
	c.Secret = "wrong"
	_, err := c.Snapshot(context.Background(), []string{"g"})
	var apiErr *provider.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != openim.CodeNoPermission {
		t.Fatalf("err = %v, want 1002", err)
	}
	if n := fake.Truth.Calls(openim.PathGetAdminToken); n != 1 {
		t.Fatalf("%d token calls, want 1 (no retry)", n)
	}
}

func TestClient_retriesBadResponses(t *testing.T) {
	fake, c := newPair(t)
	fake.SetGroup("g", "g", "o", "a", "b")
	var codes []string
	c.Retry.OnError = func(err error) { codes = append(codes, provider.ErrorCode(err)) }
	if _, err := c.Snapshot(context.Background(), []string{"g"}); err != nil { // fetch the token first
		t.Fatal(err)
	}
	fake.Truth.Inject(restfake.Fault5xx, restfake.FaultMalformed, restfake.FaultTimeout, restfake.FaultUnknownCode)
	snaps, err := c.Snapshot(context.Background(), []string{"g"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(snaps[0].Members); !slices.Equal(got, []string{"a", "b", "o"}) {
		t.Fatalf("members = %v", got)
	}
	if want := []string{"502", "malformed", "transport", "99999"}; !slices.Equal(codes, want) {
		t.Fatalf("errors seen = %v, want %v", codes, want)
	}
}

// A 429 or 503 with Retry-After (seconds or an HTTP date) is tried again
// no sooner than it asks, though the client's own backoff is milliseconds.
func TestClient_honoursRetryAfter(t *testing.T) {
	restfake.CheckRetryAfter(t, func(t *testing.T, fault restfake.Fault) (*restfake.Truth, string) {
		fake, c := newPair(t)
		fake.SetGroup("g", "g", "o", "a")
		fake.Truth.Inject(fault) // served to get_admin_token, the first call
		if _, err := c.Snapshot(context.Background(), []string{"g"}); err != nil {
			t.Fatal(err)
		}
		return fake.Truth, openim.PathGetAdminToken
	})
}

func TestClient_Members_shiftingPages(t *testing.T) {
	fake, c := newPair(t)
	fake.SetGroup("g", "g", "u000", users("u", 250)...)
	shifted := false
	fake.Truth.BeforePage(func(_ string, first int) {
		if first == 100 && !shifted {
			shifted = true
			fake.Truth.Update("g", func(g *restfake.Group) { delete(g.Members, "u050") })
		}
	})
	ms, complete, err := c.Members(context.Background(), "g")
	if err != nil || !complete {
		t.Fatalf("complete=%v err=%v", complete, err)
	}
	if got := ids(ms); len(got) != 249 || slices.Contains(got, "u050") {
		t.Fatalf("%d members, want 249 without u050", len(got))
	}
}

func TestClient_Discover(t *testing.T) {
	fake, c := newPair(t)
	fake.SetGroup("a", "a", "o")
	fake.SetGroup("b", "b", "o")
	got, err := c.Discover(context.Background())
	if err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Discover = %v, %v", got, err)
	}
}
