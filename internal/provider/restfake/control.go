package restfake

// The control API: how a test, hack/send-callback or hack/loadgen changes a
// fake provider's truth over HTTP, the way a user changes a group on the
// real platform, before (or instead of) sending the callback that reports
// it. Both fakes serve it on their own listener under ControlPrefix.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
)

// ControlPrefix is the path under which a fake serves its control API:
// POST ControlPrefix+"changes" applies a list of Changes in order;
// GET ControlPrefix+"groups/ID" returns a group's truth.
const ControlPrefix = "/fake/v1/"

// maxControlBody bounds a control request: a load generator sends its
// whole workload at once.
const maxControlBody = 64 << 20

// Change is one group change, described as the callback that reports it.
type Change struct {
	Action callbacks.Action `json:"action"`
	Params callbacks.Params `json:"params"`
}

// Apply makes a change to the truth as the platform would: create (or
// re-create) a group, add or remove members, disband it, rename it,
// transfer it or change a member's role. It uses the same defaults as the
// callbacks that report the change, so the truth and the callbacks agree.
func (t *Truth) Apply(c Change) error {
	p := c.Params
	if p.GroupID == "" {
		return errors.New("a change needs a group ID")
	}
	fn, err := change(c.Action, p)
	if err != nil {
		return err
	}
	t.Update(p.GroupID, func(g *Group) {
		fn(g)
		if g.Type == "" { // a group first seen in a membership change
			g.Type = groupType(p)
		}
	})
	return nil
}

// groupType is the change's group type; callbacks default to Public.
func groupType(p callbacks.Params) string {
	if p.GroupType == "" {
		return "Public"
	}
	return p.GroupType
}

// change returns the update a change makes to a group.
func change(a callbacks.Action, p callbacks.Params) (func(g *Group), error) {
	switch a {
	case callbacks.Create:
		return create(p)
	case callbacks.Join:
		return func(g *Group) {
			for _, u := range p.Users {
				if _, ok := g.Members[u]; !ok {
					g.Members[u] = imv1.RoleMember
				}
			}
		}, nil
	case callbacks.Quit, callbacks.Kick:
		return func(g *Group) {
			for _, u := range p.Users {
				delete(g.Members, u)
			}
		}, nil
	case callbacks.Disband:
		return func(g *Group) { g.Gone = true }, nil
	case callbacks.Info:
		return func(g *Group) {
			if p.GroupName != "" {
				g.Name = p.GroupName
			}
		}, nil
	case callbacks.Owner:
		return transfer(p)
	case callbacks.MemberField:
		return memberField(p)
	}
	return nil, fmt.Errorf("unknown action %q: use one of %s", a, callbacks.ActionList())
}

func create(p callbacks.Params) (func(g *Group), error) {
	owner, _, err := p.Creator()
	if err != nil {
		return nil, err
	}
	name := p.GroupName
	if name == "" {
		name = p.GroupID
	}
	return func(g *Group) {
		g.Type, g.Name, g.Owner, g.Gone = groupType(p), name, owner, false
		g.Members = map[string]imv1.MemberRole{owner: imv1.RoleOwner}
		for _, u := range p.Users {
			if u != owner {
				g.Members[u] = imv1.RoleMember
			}
		}
	}, nil
}

func transfer(p callbacks.Params) (func(g *Group), error) {
	if p.Owner == "" {
		return nil, fmt.Errorf("%s needs the new owner", callbacks.Owner)
	}
	return func(g *Group) {
		previous := p.PreviousOwner
		if previous == "" {
			previous = g.Owner
		}
		if _, ok := g.Members[previous]; ok && previous != p.Owner {
			g.Members[previous] = imv1.RoleMember
		}
		g.Members[p.Owner], g.Owner = imv1.RoleOwner, p.Owner
	}, nil
}

func memberField(p callbacks.Params) (func(g *Group), error) {
	user, err := p.FirstUser(callbacks.MemberField)
	if err != nil {
		return nil, err
	}
	role, err := p.MemberFieldRole()
	if err != nil || role == "" {
		return func(*Group) {}, err // only the name card changed
	}
	return func(g *Group) {
		if _, ok := g.Members[user]; ok && g.Owner != user {
			g.Members[user] = imv1.MemberRole(role)
		}
	}, nil
}

// GroupView is a group's truth as the control API returns it.
type GroupView struct {
	ID      string                     `json:"id"`
	Type    string                     `json:"type,omitempty"`
	Name    string                     `json:"name,omitempty"`
	Owner   string                     `json:"owner,omitempty"`
	Members map[string]imv1.MemberRole `json:"members"`
	Gone    bool                       `json:"gone"`
}

// ServeControl serves the control API for requests under ControlPrefix and
// reports whether the request was one.
func (t *Truth) ServeControl(w http.ResponseWriter, r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, ControlPrefix)
	if !ok {
		return false
	}
	switch id, isGroup := strings.CutPrefix(rest, "groups/"); {
	case rest == "changes" && r.Method == http.MethodPost:
		t.serveChanges(w, r)
	case isGroup && id != "" && r.Method == http.MethodGet:
		g, ok := t.Get(id)
		if !ok {
			http.Error(w, fmt.Sprintf("group %q is not in the fake provider's truth", id), http.StatusNotFound)
			return true
		}
		writeJSON(w, GroupView{ID: id, Type: g.Type, Name: g.Name, Owner: g.Owner, Members: g.Members, Gone: g.Gone})
	default:
		http.Error(w, "unknown control request: POST "+ControlPrefix+"changes or GET "+ControlPrefix+"groups/ID",
			http.StatusNotFound)
	}
	return true
}

func (t *Truth) serveChanges(w http.ResponseWriter, r *http.Request) {
	var changes []Change
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&changes); err != nil {
		http.Error(w, "the body must be a JSON list of changes: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Check them all first, so that a bad list changes nothing.
	for i, c := range changes {
		if _, err := change(c.Action, c.Params); err != nil || c.Params.GroupID == "" {
			if err == nil {
				err = errors.New("a change needs a group ID")
			}
			http.Error(w, fmt.Sprintf("change %d: %v", i, err), http.StatusBadRequest)
			return
		}
	}
	for _, c := range changes {
		_ = t.Apply(c) // checked above
	}
	writeJSON(w, map[string]int{"applied": len(changes)})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ErrNotAFake is returned by PostChanges when the server at the URL does
// not serve the control API: it is not one of these fakes.
var ErrNotAFake = errors.New("not a fake provider (it does not serve " + ControlPrefix + ")")

// PostChanges applies changes, in order, to the truth of the fake provider
// at baseURL.
func PostChanges(ctx context.Context, c *http.Client, baseURL string, changes ...Change) error {
	body, err := json.Marshal(changes)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+ControlPrefix+"changes",
		bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("changing the fake provider's truth: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusNotFound && !bytes.Contains(msg, []byte(ControlPrefix)):
		return fmt.Errorf("%s: %w", baseURL, ErrNotAFake)
	}
	return fmt.Errorf("changing the fake provider's truth: %s: %s", resp.Status, bytes.TrimSpace(msg))
}

// LocalEndpoint returns the receiver's resync endpoint when it is on this
// machine (a loopback address), where make run-local starts its fake
// providers; ok is false for a receiver without resync or with a remote
// endpoint, whose truth a tool must not try to change.
func LocalEndpoint(rcv *imv1.ChatReceiver) (endpoint string, ok bool) {
	if rcv.Spec.Resync == nil {
		return "", false
	}
	u, err := url.Parse(rcv.Spec.Resync.Endpoint)
	if err != nil || u.Scheme != "http" {
		return "", false
	}
	host := u.Hostname()
	if host == "localhost" {
		return rcv.Spec.Resync.Endpoint, true
	}
	ip := net.ParseIP(host)
	return rcv.Spec.Resync.Endpoint, ip != nil && ip.IsLoopback()
}
