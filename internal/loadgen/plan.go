// Package loadgen posts a bounded number of realistic group callbacks to a
// callback server, records which ones were acknowledged, and verifies
// afterwards that every acknowledged event is reflected in the ChatGroups.
//
// The workload has two phases so that its expected outcome does not depend
// on delivery order: first every user joins its group, then a fraction of
// them quit or are kicked. Within a phase each user appears in one event,
// so reordering and duplicating deliveries must not change the result.
package loadgen

import (
	"fmt"
	"math/rand/v2"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider/providertest"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
)

// Workload describes what to send.
type Workload struct {
	// Provider is the platform whose callbacks are sent.
	Provider imv1.Provider
	// Events is the number of distinct events (duplicates come on top).
	Events int
	// Groups is the number of groups the events are spread over.
	Groups int
	// HotGroups and HotFraction skew the load: HotFraction of the events go
	// to the first HotGroups groups. Zero means no skew.
	HotGroups   int
	HotFraction float64
	// LeaveFraction of the users leave again in the second phase; a third
	// of the leaves are kicks.
	LeaveFraction float64
	// DuplicateRate is the fraction of events delivered twice.
	DuplicateRate float64
	// ReorderWindow shuffles deliveries within windows of this many events.
	ReorderWindow int
	// GroupPrefix makes group IDs unique per run.
	GroupPrefix string
	// Seed makes the workload reproducible.
	Seed uint64
}

// Event is one distinct event of the workload.
type Event struct {
	// ID indexes the event in Plan.Events.
	ID int
	// GroupID and User are what the event is about.
	GroupID string
	User    string
	// Action is the change: a join, a quit or a kick.
	Action callbacks.Action
	// Leave is true for a quit or kick, false for a join.
	Leave bool
	// Callback is the event as the platform sends it.
	Callback callbacks.Callback
	// Phase is 0 for joins and 1 for leaves.
	Phase int
}

// Plan is a generated workload: the distinct events, and the deliveries
// (indexes into Events, with duplicates) in sending order, per phase.
type Plan struct {
	Workload
	Events     []Event
	Deliveries [2][]int
}

// NewPlan generates the events and the delivery order of a workload.
func NewPlan(w Workload) (*Plan, error) {
	if w.Events <= 0 || w.Groups <= 0 {
		return nil, fmt.Errorf("events and groups must be positive")
	}
	if w.HotGroups > w.Groups {
		return nil, fmt.Errorf("hot groups (%d) exceed groups (%d)", w.HotGroups, w.Groups)
	}
	sender, err := providertest.New(string(w.Provider), "", "")
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(w.Seed, w.Seed^0x9e3779b97f4a7c15))
	p := &Plan{Workload: w}

	leaves := int(float64(w.Events) * w.LeaveFraction / (1 + w.LeaveFraction))
	joins := w.Events - leaves
	// Event times: joins first, then leaves, one millisecond apart, so that
	// Tencent's last-writer-wins order agrees with the phases.
	start := time.Now().Add(-time.Minute).UnixMilli()
	for i := range joins {
		group := p.pickGroup(rng)
		user := fmt.Sprintf("u%d", i)
		ev, err := p.event(sender, len(p.Events), group, user, callbacks.Join, start+int64(i))
		if err != nil {
			return nil, err
		}
		p.Events = append(p.Events, ev)
	}
	left := make(map[string]bool, leaves)
	for i := range leaves {
		joined := p.Events[rng.IntN(joins)]
		if left[joined.User] {
			continue // each user leaves at most once
		}
		left[joined.User] = true
		action := callbacks.Quit
		if rng.IntN(3) == 0 {
			action = callbacks.Kick
		}
		ev, err := p.event(sender, len(p.Events), joined.GroupID, joined.User, action, start+int64(joins+i))
		if err != nil {
			return nil, err
		}
		p.Events = append(p.Events, ev)
	}
	for _, ev := range p.Events {
		p.Deliveries[ev.Phase] = append(p.Deliveries[ev.Phase], ev.ID)
		if rng.Float64() < w.DuplicateRate {
			p.Deliveries[ev.Phase] = append(p.Deliveries[ev.Phase], ev.ID)
		}
	}
	for phase := range p.Deliveries {
		shuffleWindows(rng, p.Deliveries[phase], w.ReorderWindow)
	}
	return p, nil
}

func (p *Plan) pickGroup(rng *rand.Rand) string {
	g := rng.IntN(p.Groups)
	if p.HotGroups > 0 && rng.Float64() < p.HotFraction {
		g = rng.IntN(p.HotGroups)
	}
	return fmt.Sprintf("%s-%d", p.GroupPrefix, g)
}

// event builds one event's callback in the provider's format: a join by
// invitation, a quit, or a kick by the admin.
func (p *Plan) event(sender callbacks.Sender, id int, group, user string, action callbacks.Action, ms int64) (Event, error) {
	ev := Event{ID: id, GroupID: group, User: user, Action: action, Leave: action != callbacks.Join}
	params := callbacks.Params{GroupID: group, Users: []string{user}, EventTime: time.UnixMilli(ms),
		OperationID: fmt.Sprintf("load-%d", id), Reason: "load test"}
	if ev.Leave {
		ev.Phase = 1
	} else {
		params.Operator = callbacks.DefaultOperator
	}
	cbs, err := sender.Build(action, params)
	if err != nil {
		return Event{}, fmt.Errorf("building event %d: %w", id, err)
	}
	ev.Callback = cbs[0] // one user: one callback
	return ev, nil
}

// Changes lists the workload's changes in the order the platform made them
// (every join, then the leaves), for a fake provider's truth: the platform
// applies every change, whichever of its callbacks arrive.
func (p *Plan) Changes() []restfake.Change {
	out := make([]restfake.Change, len(p.Events))
	for i, ev := range p.Events {
		out[i] = restfake.Change{Action: ev.Action, Params: callbacks.Params{GroupID: ev.GroupID, Users: []string{ev.User}}}
	}
	return out
}

// shuffleWindows shuffles s within consecutive windows of size n.
func shuffleWindows(rng *rand.Rand, s []int, n int) {
	if n < 2 {
		return
	}
	for lo := 0; lo < len(s); lo += n {
		w := s[lo:min(lo+n, len(s))]
		rng.Shuffle(len(w), func(i, j int) { w[i], w[j] = w[j], w[i] })
	}
}
