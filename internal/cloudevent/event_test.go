package cloudevent

import (
	"strings"
	"testing"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// testEntry is a journal entry whose group ID needs escaping in a header.
func testEntry(seq int64) *Entry {
	return &Entry{
		Namespace: "team-a",
		Name:      "tencent-tgs-1-0123456789abcdef",
		UID:       "6f1c2d8e-1b7a-4c55-9e0b-2f3a4b5c6d7e",
		GroupID:   "@TGS#_1 \"群\" 100%",
		Kind:      imv1.EventMembersJoined,
		Seq:       seq,
		Time:      time.Date(2026, 11, 23, 14, 5, 6, 123456000, time.FixedZone("CST", 8*3600)),
		Data:      []byte(`{"namespace":"team-a","name":"tencent-tgs-1-0123456789abcdef","provider":"Tencent","groupID":"@TGS#_1","trigger":"t","seq":7,"kind":"MembersJoined","members":["alice","bob"],"time":"2026-11-23T06:05:06.123456Z","key":"k"}`),
	}
}

func TestBuild(t *testing.T) {
	e := testEntry(7)
	ev, err := Build(e, map[string]string{"tenant": "a"})
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"specversion": {ev.SpecVersion(), "1.0"},
		"id":          {ev.ID(), "6f1c2d8e-1b7a-4c55-9e0b-2f3a4b5c6d7e-7"},
		"source":      {ev.Source(), "/apis/im.chatgroup.dev/v1alpha1/namespaces/team-a/chatgroups/tencent-tgs-1-0123456789abcdef"},
		"type":        {ev.Type(), "dev.chatgroup.v1alpha1.MembersJoined"},
		"subject":     {ev.Subject(), e.GroupID},
		"data":        {string(ev.Data()), string(e.Data)},
		"content":     {ev.DataContentType(), "application/json"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if !ev.Time().Equal(e.Time) {
		t.Errorf("time = %v, want %v", ev.Time(), e.Time)
	}
	if got := ev.Extensions()["tenant"]; got != "a" {
		t.Errorf("extension tenant = %v", got)
	}
	again, _ := Build(testEntry(7), nil)
	if again.ID() != ev.ID() {
		t.Errorf("id is not deterministic: %q then %q", ev.ID(), again.ID())
	}
	other := testEntry(7)
	other.UID = "another-incarnation"
	if o, _ := Build(other, nil); o.ID() == ev.ID() {
		t.Errorf("two incarnations share id %q", ev.ID())
	}
}

func TestBuildRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Entry)
		ext  map[string]string
		want string
	}{
		"no UID":        {edit: func(e *Entry) { e.UID = "" }, want: "UID"},
		"no group ID":   {edit: func(e *Entry) { e.GroupID = "" }, want: "group ID"},
		"no kind":       {edit: func(e *Entry) { e.Kind = "" }, want: "kind"},
		"seq 0":         {edit: func(e *Entry) { e.Seq = 0 }, want: "seq"},
		"no time":       {edit: func(e *Entry) { e.Time = time.Time{} }, want: "time"},
		"bad data":      {edit: func(e *Entry) { e.Data = []byte("{") }, want: "JSON"},
		"reserved ext":  {ext: map[string]string{"id": "x"}, want: "context attribute"},
		"invalid ext":   {ext: map[string]string{"Bad-Name": "x"}, want: "lower-case"},
		"empty ext key": {ext: map[string]string{"": "x"}, want: "empty"},
	} {
		t.Run(name, func(t *testing.T) {
			e := testEntry(1)
			if tc.edit != nil {
				tc.edit(e)
			}
			_, err := Build(e, tc.ext)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDefaultTarget(t *testing.T) {
	for name, tc := range map[string]struct {
		env     map[string]string
		want    *Target
		wantErr string
	}{
		"unset": {},
		"sink only": {
			env:  map[string]string{EnvSink: "http://broker-ingress.knative-eventing.svc.cluster.local/ns/default"},
			want: &Target{URL: "http://broker-ingress.knative-eventing.svc.cluster.local/ns/default"},
		},
		"with overrides": {
			env:  map[string]string{EnvSink: "https://sink.example/", EnvCEOverrides: `{"extensions":{"tenant":"a","cluster":"prod1"}}`},
			want: &Target{URL: "https://sink.example/", Extensions: map[string]string{"tenant": "a", "cluster": "prod1"}},
		},
		"overrides without sink": {env: map[string]string{EnvCEOverrides: `{"extensions":{"a":"b"}}`}},
		"relative sink":          {env: map[string]string{EnvSink: "/events"}, wantErr: "scheme"},
		"other scheme":           {env: map[string]string{EnvSink: "ftp://x/"}, wantErr: "scheme"},
		"bad overrides":          {env: map[string]string{EnvSink: "http://x/", EnvCEOverrides: `{"extensions":`}, wantErr: EnvCEOverrides},
		"non-string extension":   {env: map[string]string{EnvSink: "http://x/", EnvCEOverrides: `{"extensions":{"n":1}}`}, wantErr: EnvCEOverrides},
		"reserved extension":     {env: map[string]string{EnvSink: "http://x/", EnvCEOverrides: `{"extensions":{"type":"x"}}`}, wantErr: "context attribute"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := DefaultTarget(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) {
				t.Fatalf("target = %+v, want %+v", got, tc.want)
			}
			if got == nil {
				return
			}
			if got.URL != tc.want.URL || len(got.Token) != 0 || len(got.Extensions) != len(tc.want.Extensions) {
				t.Fatalf("target = %+v, want %+v", got, tc.want)
			}
			for k, v := range tc.want.Extensions {
				if got.Extensions[k] != v {
					t.Errorf("extension %s = %q, want %q", k, got.Extensions[k], v)
				}
			}
		})
	}
}
