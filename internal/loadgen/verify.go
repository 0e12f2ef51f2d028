package loadgen

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// Verification compares the ChatGroups with what was acknowledged.
type Verification struct {
	// Groups is the number of ChatGroups the plan's events went to.
	Groups int
	// Lost counts acknowledged events not reflected in status: an acked
	// join whose user is not a member (and never left), or an acked leave
	// whose user is still a member.
	Lost int
	// Phantoms counts members that no event of the plan added.
	Phantoms int
	// DuplicateEffects counts events applied more than once: eventsApplied
	// above the number of distinct events sent to the group.
	DuplicateEffects int
	// Undercounted counts groups whose eventsApplied is below their
	// acknowledged events.
	Undercounted int
	// Examples holds a few violations for the log.
	Examples []string
}

// OK is true when nothing was lost or applied twice.
func (v *Verification) OK() bool {
	return v.Lost == 0 && v.Phantoms == 0 && v.DuplicateEffects == 0 && v.Undercounted == 0
}

func (v *Verification) String() string {
	return fmt.Sprintf("%d groups: %d lost, %d phantom members, %d duplicate effects, %d groups undercounted",
		v.Groups, v.Lost, v.Phantoms, v.DuplicateEffects, v.Undercounted)
}

func (v *Verification) example(format string, args ...any) {
	if len(v.Examples) < 10 {
		v.Examples = append(v.Examples, fmt.Sprintf(format, args...))
	}
}

// groupExpectation is what one group must show.
type groupExpectation struct {
	sent, acked int
	// users maps each user of the group to its join and leave events.
	users map[string]*userEvents
}

type userEvents struct{ join, leave int }

// mayBeStale counts the acknowledged joins that may rightly not count as
// applied: a join answered 503 is committed by the server's background
// retries, possibly after the same user's leave, and a join older than the
// leave's tombstone is stale.
func (g *groupExpectation) mayBeStale(rep *Report) int {
	n := 0
	for _, u := range g.users {
		if u.join >= 0 && u.leave >= 0 && rep.Acked[u.join] && rep.Acked[u.leave] &&
			u.join < len(rep.Queued) && rep.Queued[u.join] {
			n++
		}
	}
	return n
}

// Verify reads the ChatGroups in namespace and checks them against the
// plan and report. reader should read the API server, not a cache.
func Verify(ctx context.Context, reader client.Reader, namespace string, plan *Plan, rep *Report) (*Verification, error) {
	expect := map[string]*groupExpectation{}
	for _, ev := range plan.Events {
		g := expect[ev.GroupID]
		if g == nil {
			g = &groupExpectation{users: map[string]*userEvents{}}
			expect[ev.GroupID] = g
		}
		g.sent++
		if rep.Acked[ev.ID] {
			g.acked++
		}
		u := g.users[ev.User]
		if u == nil {
			u = &userEvents{join: -1, leave: -1}
			g.users[ev.User] = u
		}
		if ev.Leave {
			u.leave = ev.ID
		} else {
			u.join = ev.ID
		}
	}

	for _, g := range expect {
		g.acked -= g.mayBeStale(rep)
	}

	var list imv1.ChatGroupList
	if err := reader.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing ChatGroups: %w", err)
	}
	found := map[string]*imv1.ChatGroup{}
	for i := range list.Items {
		cg := &list.Items[i]
		if cg.Spec.Provider == plan.Provider && strings.HasPrefix(cg.Spec.GroupID, plan.GroupPrefix+"-") {
			found[cg.Spec.GroupID] = cg
		}
	}

	v := &Verification{Groups: len(expect)}
	for id, exp := range expect {
		cg := found[id]
		if cg == nil {
			if exp.acked > 0 {
				v.Lost += exp.acked
				v.example("group %s: missing, %d events acked", id, exp.acked)
			}
			continue
		}
		listed, err := listedMembers(ctx, reader, cg)
		if err != nil {
			return nil, err
		}
		checkGroup(v, cg, listed, exp, rep)
	}
	return v, nil
}

// listedMembers returns the members a ChatGroup lists: status.members, or
// for a large group its member slices, found by the group label as users
// find them.
func listedMembers(ctx context.Context, reader client.Reader, cg *imv1.ChatGroup) ([]imv1.GroupMember, error) {
	if cg.Status.MemberSlices == nil {
		return cg.Status.Members, nil
	}
	var list imv1.ChatGroupMemberSliceList
	if err := reader.List(ctx, &list, client.InNamespace(cg.Namespace), client.MatchingLabels{imv1.GroupLabel: cg.Name}); err != nil {
		return nil, fmt.Errorf("listing the member slices of %s: %w", cg.Name, err)
	}
	var out []imv1.GroupMember
	for _, sl := range list.Items {
		out = append(out, sl.Members...)
	}
	return out, nil
}

func checkGroup(v *Verification, cg *imv1.ChatGroup, listed []imv1.GroupMember, exp *groupExpectation, rep *Report) {
	id := cg.Spec.GroupID
	members := make(map[string]bool, len(listed))
	for _, m := range listed {
		if members[m.UserID] {
			v.DuplicateEffects++
			v.example("group %s: member %s is listed twice", id, m.UserID)
		}
		members[m.UserID] = true
		if exp.users[m.UserID] == nil {
			v.Phantoms++
			v.example("group %s: member %s was never sent", id, m.UserID)
		}
	}
	for user, u := range exp.users {
		switch {
		case u.leave >= 0 && rep.Acked[u.leave] && members[user]:
			v.Lost++
			v.example("group %s: %s left (acked) but is a member", id, user)
		case u.leave < 0 && u.join >= 0 && rep.Acked[u.join] && !members[user]:
			v.Lost++
			v.example("group %s: %s joined (acked) but is not a member", id, user)
		}
	}
	if applied := int(cg.Status.EventsApplied); applied > exp.sent {
		v.DuplicateEffects += applied - exp.sent
		v.example("group %s: %d events applied, only %d distinct sent", id, applied, exp.sent)
	} else if applied < exp.acked {
		v.Undercounted++
		v.example("group %s: %d events applied, %d acked", id, applied, exp.acked)
	}
}
