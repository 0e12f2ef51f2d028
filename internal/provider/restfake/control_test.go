package restfake_test

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim/openimtest"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
)

// Each fake serves the control API beside its REST API, and a change posted
// to it lands in the truth with the same defaults as its callback.
func TestControl_changesReachTheTruthOfBothFakes(t *testing.T) {
	tc := tencenttest.NewFakeServer(1400000000, "administrator", "key")
	t.Cleanup(tc.Close)
	oi := openimtest.NewFakeServer("secret", "admin")
	t.Cleanup(oi.Close)
	for name, f := range map[string]struct {
		url   string
		truth *restfake.Truth
	}{"tencent": {tc.URL, tc.Truth}, "openim": {oi.URL, oi.Truth}} {
		t.Run(name, func(t *testing.T) {
			changes := []restfake.Change{
				{Action: callbacks.Create, Params: callbacks.Params{GroupID: "g1", Users: []string{"leckie", "bob", "peter"}}},
				{Action: callbacks.Quit, Params: callbacks.Params{GroupID: "g1", Users: []string{"peter"}}},
				{Action: callbacks.Join, Params: callbacks.Params{GroupID: "g1", Users: []string{"carol", "leckie"}}},
				{Action: callbacks.MemberField, Params: callbacks.Params{GroupID: "g1", Users: []string{"bob"}}},
				{Action: callbacks.Owner, Params: callbacks.Params{GroupID: "g1", Owner: "carol"}},
				{Action: callbacks.Info, Params: callbacks.Params{GroupID: "g1", GroupName: "renamed"}},
			}
			if err := restfake.PostChanges(t.Context(), http.DefaultClient, f.url, changes...); err != nil {
				t.Fatal(err)
			}
			g := view(t, f.url, "g1")
			want := map[string]imv1.MemberRole{"leckie": imv1.RoleMember, "bob": imv1.RoleAdmin, "carol": imv1.RoleOwner}
			if g.Owner != "carol" || g.Name != "renamed" || g.Type != "Public" || g.Gone || !maps.Equal(g.Members, want) {
				t.Fatalf("truth after the changes: %+v, want owner carol, name renamed, members %v", g, want)
			}
			disband := restfake.Change{Action: callbacks.Disband, Params: callbacks.Params{GroupID: "g1"}}
			if err := restfake.PostChanges(t.Context(), http.DefaultClient, f.url, disband); err != nil {
				t.Fatal(err)
			}
			if got, _ := f.truth.Get("g1"); !got.Gone {
				t.Fatal("the disband did not reach the truth")
			}
		})
	}
}

// A list with one bad change is refused whole, with a message naming it,
// and changes nothing.
func TestControl_badListChangesNothing(t *testing.T) {
	f := tencenttest.NewFakeServer(1400000000, "administrator", "key")
	t.Cleanup(f.Close)
	err := restfake.PostChanges(t.Context(), http.DefaultClient, f.URL,
		restfake.Change{Action: callbacks.Join, Params: callbacks.Params{GroupID: "g1", Users: []string{"bob"}}},
		restfake.Change{Action: "explode", Params: callbacks.Params{GroupID: "g1"}})
	if err == nil || !strings.Contains(err.Error(), `change 1: unknown action "explode"`) {
		t.Fatalf("error %v, want one naming change 1", err)
	}
	if _, ok := f.Truth.Get("g1"); ok {
		t.Fatal("the good change of a refused list was applied")
	}
	resp, err := http.Post(f.URL+restfake.ControlPrefix+"changes", "application/json", strings.NewReader(`{"action":"join"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a body that is not a list: %s, want 400", resp.Status)
	}
}

// A server that does not serve the control API is reported as not a fake,
// so tools can tell a real provider on this machine from a fake one.
func TestControl_realServerIsNotAFake(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	err := restfake.PostChanges(t.Context(), http.DefaultClient, srv.URL,
		restfake.Change{Action: callbacks.Join, Params: callbacks.Params{GroupID: "g1", Users: []string{"bob"}}})
	if !errors.Is(err, restfake.ErrNotAFake) {
		t.Fatalf("error %v, want ErrNotAFake", err)
	}
}

func TestLocalEndpoint(t *testing.T) {
	for endpoint, want := range map[string]bool{
		"http://127.0.0.1:34567":            true,
		"http://localhost:8090":             true,
		"http://[::1]:8090":                 true,
		"https://adminapisgp.im.qcloud.com": false,
		"http://openim-api.openim:10002":    false,
		"http://10.0.0.1:10002":             false,
	} {
		rcv := &imv1.ChatReceiver{Spec: imv1.ChatReceiverSpec{Resync: &imv1.ResyncSpec{Endpoint: endpoint}}}
		if _, got := restfake.LocalEndpoint(rcv); got != want {
			t.Errorf("LocalEndpoint(%s) = %v, want %v", endpoint, got, want)
		}
	}
	if _, ok := restfake.LocalEndpoint(&imv1.ChatReceiver{}); ok {
		t.Error("a receiver without resync has a local endpoint")
	}
}

func view(t *testing.T, base, id string) restfake.GroupView {
	t.Helper()
	resp, err := http.Get(base + restfake.ControlPrefix + "groups/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var g restfake.GroupView
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET group %s: %s", id, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil {
		t.Fatal(err)
	}
	return g
}
