package groupstate

import (
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// keyRecord is what the dedupe window knows about a key: for an event
// without a platform time, the arrival time it was recorded at.
type keyRecord struct {
	untimed bool
	at      time.Time
}

// untimedSep separates an untimed key from its arrival time in
// status.recentKeys.
const untimedSep = "~"

func parseKey(s string) (string, keyRecord) {
	key, at, ok := strings.Cut(s, untimedSep)
	if !ok {
		return s, keyRecord{}
	}
	us, err := strconv.ParseInt(at, 36, 64)
	if err != nil {
		return s, keyRecord{}
	}
	return key, keyRecord{untimed: true, at: time.UnixMicro(us).UTC()}
}

func formatKey(ev *GroupEvent) string {
	if !ev.Untimed {
		return ev.Key
	}
	return ev.Key + untimedSep + strconv.FormatInt(ev.EventTime.UnixMicro(), 36)
}

// isDuplicate reports whether ev repeats an event in the dedupe window.
// An event with a platform time is a duplicate when its key is in the
// window. One without (stamped with its arrival time) is a duplicate only
// for UntimedDedupe after the recorded one, and only while nothing applied
// since has touched the same members or fields: neither provider retries
// "after" callbacks, so a repeat that follows an event which undid its
// effect (join, quit, join) is a new action.
func (g *groupState) isDuplicate(ev *GroupEvent, lim Limits) bool {
	rec, ok := g.keys[ev.Key]
	switch {
	case !ok:
		return false
	case !rec.untimed:
		return true
	case ev.EventTime.Sub(rec.at) > lim.untimedDedupe():
		return false
	}
	return !g.touchedSince(ev, rec.at)
}

// touchedSince reports whether anything newer than at changed the members
// or fields that ev is about.
func (g *groupState) touchedSince(ev *GroupEvent, at time.Time) bool {
	st := g.st
	after := func(t *metav1.MicroTime) bool { return t != nil && t.After(at) }
	for _, m := range ev.Members {
		if cur, ok := g.members[m.UserID]; ok && since(cur).After(at) {
			return true
		}
		if d, ok := g.departed[m.UserID]; ok && d.At.After(at) {
			return true
		}
	}
	switch ev.Kind {
	case imv1.EventCreated, imv1.EventDisbanded:
		return after(st.CreatedTime) || after(st.DisbandedAt)
	case imv1.EventInfoChanged:
		return after(st.InfoTime) || after(st.NameTime) || after(st.OwnerTime)
	case imv1.EventOwnerChanged:
		return after(st.OwnerTime)
	}
	return false
}

func (g *groupState) rememberKey(ev *GroupEvent, window int) {
	if _, ok := g.keys[ev.Key]; ok {
		// An expired or superseded key is recorded again, newest last.
		g.st.RecentKeys = slices.DeleteFunc(g.st.RecentKeys, func(k string) bool {
			key, _ := parseKey(k)
			return key == ev.Key
		})
	}
	g.keys[ev.Key] = keyRecord{untimed: ev.Untimed, at: ev.EventTime}
	g.st.RecentKeys = append(g.st.RecentKeys, formatKey(ev))
	if n := len(g.st.RecentKeys) - window; n > 0 {
		for _, k := range g.st.RecentKeys[:n] {
			key, _ := parseKey(k)
			delete(g.keys, key)
		}
		g.st.RecentKeys = slices.Clone(g.st.RecentKeys[n:])
	}
}
