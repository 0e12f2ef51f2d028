package main

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

// joinsMeasured is how many single-member joins the big-group scenarios
// time, one after the other, on an otherwise quiet API server.
const joinsMeasured = 40

// join10k creates a 10,000-member group and then times single-member
// joins, one at a time.
func join10k(ctx context.Context, rig *statusRig) (statusRow, error) {
	return bigGroup(ctx, rig, "bench-status-10k", 10_000, 10_000)
}

// create100k creates a 100,000-member group with one event (as a resync
// or an import would), times single-member joins, and checks that every
// member is listed.
func create100k(ctx context.Context, rig *statusRig) (statusRow, error) {
	return bigGroup(ctx, rig, "bench-status-100k", 100_000, 100_000)
}

func bigGroup(ctx context.Context, rig *statusRig, ns string, size, step int) (statusRow, error) {
	if err := testsupport.CreateNamespace(ctx, rig.client, ns); err != nil {
		return statusRow{}, err
	}
	const groupID = "@TGS#big"
	target := benchTarget(ns, groupID)
	start := time.Now()
	if _, err := submit(rig, target, createEvent(groupID, members("user", 0, step), time.Now())); err != nil {
		return statusRow{}, err
	}
	for from := step; from < size; from += step {
		if _, err := submit(rig, target, joinEvent(groupID, members("user", from, step), time.Now())); err != nil {
			return statusRow{}, err
		}
	}
	created := time.Since(start)
	time.Sleep(settle)
	m0 := rig.meter.snapshot()
	start = time.Now()
	var lat []time.Duration
	var slowest, heaviest joinReading
	for i := range joinsMeasured {
		before := rig.meter.snapshot()
		l, err := submit(rig, target, joinEvent(groupID, members("joiner", i, 1), time.Now()))
		if err != nil {
			return statusRow{}, err
		}
		lat = append(lat, l)
		j := joinReading{i, l, rig.meter.snapshot().sub(before)}
		if j.latency > slowest.latency {
			slowest = j
		}
		if j.m.stored > heaviest.m.stored {
			heaviest = j
		}
	}
	elapsed := time.Since(start)
	m := rig.meter.snapshot().sub(m0)
	listed, count, err := listedMembers(ctx, rig, target.Key)
	if err != nil {
		return statusRow{}, err
	}
	note := fmt.Sprintf("(created in %.1fs; %d writes for %d joins; slowest %s; heaviest %s; lists %d of memberCount %d, want %d)",
		created.Seconds(), m.writes, joinsMeasured, slowest, heaviest, listed, count, size+joinsMeasured)
	return statusRow{name: fmt.Sprintf("single-member joins, %d-member group", size), events: joinsMeasured,
		elapsed: elapsed, meterReading: m, latencies: lat, note: note}, nil
}

// joinReading is one measured join: its latency and the writes (of the
// committer and the reconciler alike) made while it was committed.
type joinReading struct {
	index   int
	latency time.Duration
	m       meterReading
}

func (j joinReading) String() string {
	return fmt.Sprintf("join %d: %d ms, %d writes, %.1f KiB stored", j.index, j.latency.Milliseconds(), j.m.writes,
		float64(j.m.stored)/1024)
}

// listedMembers counts the distinct members a ChatGroup lists (in
// status.members, or in its member slices listed by the group label), and
// returns its memberCount. A member listed twice is an error.
func listedMembers(ctx context.Context, rig *statusRig, key types.NamespacedName) (listed int, count int32, err error) {
	cg := &imv1.ChatGroup{}
	if err := rig.reader.Get(ctx, key, cg); err != nil {
		return 0, 0, err
	}
	all := cg.Status.Members
	var list imv1.ChatGroupMemberSliceList
	if err := rig.reader.List(ctx, &list, client.InNamespace(key.Namespace), client.MatchingLabels{imv1.GroupLabel: key.Name}); err != nil {
		return 0, 0, err
	}
	for _, sl := range list.Items {
		all = append(all, sl.Members...)
	}
	seen := map[string]bool{}
	for _, m := range all {
		if seen[m.UserID] {
			return 0, 0, fmt.Errorf("ChatGroup %s lists %s twice", key.Name, m.UserID)
		}
		seen[m.UserID] = true
	}
	return len(seen), cg.Status.MemberCount, nil
}
