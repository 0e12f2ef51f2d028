package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
)

var carolJoins = restfake.Change{Action: callbacks.Join, Params: callbacks.Params{GroupID: "g", Users: []string{"carol"}}}

// A receiver whose resync endpoint is a local fake: the change reaches the
// fake's truth, whether the callback is then sent or dropped.
func TestChangeTruth_changesTheFake(t *testing.T) {
	for _, drop := range []bool{false, true} {
		f := tencenttest.NewFakeServer(1400000000, "administrator", "key")
		if err := changeTruth(t.Context(), http.DefaultClient, f.URL, drop, carolJoins); err != nil {
			t.Fatalf("drop=%v: %v", drop, err)
		}
		if g, ok := f.Truth.Get("g"); !ok || g.Members["carol"] == "" {
			t.Errorf("drop=%v: the fake's truth has no carol: %+v", drop, g)
		}
		f.Close()
	}
}

// --drop without a fake to change would lose the change altogether: it is
// a usage error. Without --drop the callback alone is sent.
func TestChangeTruth_dropNeedsAFake(t *testing.T) {
	var uerr usageError
	if err := changeTruth(t.Context(), http.DefaultClient, "", true, carolJoins); !errors.As(err, &uerr) {
		t.Errorf("--drop without a fake: %v, want a usage error", err)
	}
	if err := changeTruth(t.Context(), http.DefaultClient, "", false, carolJoins); err != nil {
		t.Errorf("no fake, no --drop: %v, want nil", err)
	}
	other := httptest.NewServer(http.NotFoundHandler()) // a real provider on this machine
	defer other.Close()
	if err := changeTruth(t.Context(), http.DefaultClient, other.URL, false, carolJoins); err != nil {
		t.Errorf("a local endpoint that is not a fake, no --drop: %v, want nil (callback only)", err)
	}
	if err := changeTruth(t.Context(), http.DefaultClient, other.URL, true, carolJoins); !errors.Is(err, restfake.ErrNotAFake) {
		t.Errorf("a local endpoint that is not a fake, --drop: %v, want ErrNotAFake", err)
	}
}
