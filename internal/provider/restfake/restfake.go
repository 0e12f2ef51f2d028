// Package restfake is the provider-neutral part of the fake provider REST
// servers (tencenttest.FakeServer, openimtest.FakeServer): the "truth" a
// test controls (the groups as the provider knows them), the faults a
// test injects into the next responses, the server they run on (Serve),
// and how a fake provider loses the callbacks it sends (Loss). Each
// provider's fake renders the truth in its own documented request and
// response shapes.
package restfake

import (
	"slices"
	"sync"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// Group is one group as the provider knows it.
type Group struct {
	// Owner, Name and Type are the profile; Type uses the provider's own
	// spelling.
	Owner, Name, Type string
	// Members maps each member to a role.
	Members map[string]imv1.MemberRole
	// Gone is true once the group is disbanded.
	Gone bool
	// ErrorCode, when not 0, is an error the provider reports for this
	// group alone inside a successful batch answer.
	ErrorCode int
}

// Fault is a failure a fake serves instead of the next response.
type Fault string

// The faults a fake can serve.
const (
	// Fault5xx answers HTTP 503.
	Fault5xx Fault = "5xx"
	// FaultMalformed answers HTTP 200 with a body that is not JSON.
	FaultMalformed Fault = "malformed"
	// FaultTimeout holds the request until the client gives up.
	FaultTimeout Fault = "timeout"
	// FaultUnknownCode answers with an error code no document lists.
	FaultUnknownCode Fault = "unknown-code"
)

// Truth is the state of a fake provider and the faults it will serve. Its
// methods are safe for concurrent use.
type Truth struct {
	mu     sync.Mutex
	groups map[string]*Group
	order  []string
	faults []Fault
	// beforePage, when set, runs before each member page is served, with
	// the group and the 0-based index of the page's first member; tests
	// change the truth in it to shift pages while they are read.
	beforePage func(groupID string, first int)
	calls      map[string]int
	times      map[string][]time.Time
}

// NewTruth returns an empty truth.
func NewTruth() *Truth {
	return &Truth{groups: map[string]*Group{}, calls: map[string]int{}, times: map[string][]time.Time{}}
}

// Update changes (creating when absent) a group under the lock.
func (t *Truth) Update(groupID string, fn func(g *Group)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.groups[groupID]
	if !ok {
		g = &Group{Members: map[string]imv1.MemberRole{}}
		t.groups[groupID] = g
		t.order = append(t.order, groupID)
	}
	fn(g)
}

// Get returns a copy of a group and whether it exists.
func (t *Truth) Get(groupID string) (Group, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.get(groupID)
}

func (t *Truth) get(groupID string) (Group, bool) {
	g, ok := t.groups[groupID]
	if !ok {
		return Group{}, false
	}
	cp := *g
	cp.Members = make(map[string]imv1.MemberRole, len(g.Members))
	for u, r := range g.Members {
		cp.Members[u] = r
	}
	return cp, true
}

// IDs lists the groups in creation order.
func (t *Truth) IDs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.order)
}

// Inject queues faults, served in order instead of the next responses.
func (t *Truth) Inject(faults ...Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults = append(t.faults, faults...)
}

// NextFault takes the next queued fault, if any.
func (t *Truth) NextFault() (Fault, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.faults) == 0 {
		return "", false
	}
	f := t.faults[0]
	t.faults = t.faults[1:]
	return f, true
}

// BeforePage sets the hook run before each member page is served.
func (t *Truth) BeforePage(fn func(groupID string, first int)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.beforePage = fn
}

// MemberPage runs the page hook, then returns the group's members sorted
// by user ID from index first (at most n of them), the member count, and
// whether the group exists and is not gone.
func (t *Truth) MemberPage(groupID string, first, n int) ([]string, map[string]imv1.MemberRole, int, bool) {
	t.mu.Lock()
	hook := t.beforePage
	t.mu.Unlock()
	if hook != nil {
		hook(groupID, first)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.get(groupID)
	if !ok || g.Gone {
		return nil, nil, 0, false
	}
	users := make([]string, 0, len(g.Members))
	for u := range g.Members {
		users = append(users, u)
	}
	slices.Sort(users)
	first = min(max(first, 0), len(users))
	return users[first:min(first+n, len(users))], g.Members, len(users), true
}

// maxTimes is how many arrival times Count keeps per API.
const maxTimes = 1000

// Count records a call to an API and its arrival time, for tests that
// count calls or check how long a client waited between them.
func (t *Truth) Count(api string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls[api]++
	times := append(t.times[api], time.Now())
	t.times[api] = times[max(0, len(times)-maxTimes):]
}

// Times returns when the last calls to an API arrived (up to 1,000), oldest
// first.
func (t *Truth) Times(api string) []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.times[api])
}

// Calls returns how often an API was called.
func (t *Truth) Calls(api string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls[api]
}
