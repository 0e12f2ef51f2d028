package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

func TestSetGroupConditions(t *testing.T) {
	type want struct {
		status metav1.ConditionStatus
		reason string
	}
	absent := want{}
	tests := []struct {
		name   string
		status imv1.ChatGroupStatus
		obs    groupObservation
		want   map[string]want
	}{
		{
			name:   "reports an active group as ready",
			status: imv1.ChatGroupStatus{MemberCount: 2, Members: make([]imv1.GroupMember, 2)},
			want: map[string]want{
				imv1.ReadyCondition:            {metav1.ConditionTrue, imv1.SucceededReason},
				imv1.DisbandedCondition:        {metav1.ConditionFalse, imv1.ActiveReason},
				imv1.MembersTruncatedCondition: absent,
				imv1.CleanupSucceededCondition: absent,
				imv1.EventsMissedCondition:     absent,
			},
		},
		{
			name:   "reports truncated members",
			status: imv1.ChatGroupStatus{MemberCount: 3, Members: make([]imv1.GroupMember, 2)},
			want:   map[string]want{imv1.MembersTruncatedCondition: {metav1.ConditionTrue, imv1.MemberBoundReason}},
		},
		{
			name: "a sliced group lists its members in slices, not status.members",
			status: imv1.ChatGroupStatus{MemberCount: 100000,
				MemberSlices: &imv1.MemberSlicesStatus{Generation: 1, Slices: 1563, Listed: 100000}},
			want: map[string]want{imv1.MembersTruncatedCondition: absent},
		},
		{
			name: "a sliced group above the member bound is truncated",
			status: imv1.ChatGroupStatus{MemberCount: 300000,
				MemberSlices: &imv1.MemberSlicesStatus{Generation: 1, Slices: 3125, Listed: 200000}},
			want: map[string]want{imv1.MembersTruncatedCondition: {metav1.ConditionTrue, imv1.MemberBoundReason}},
		},
		{
			name:   "reports a disbanded group without cleanup triggers",
			status: imv1.ChatGroupStatus{Disbanded: true},
			want: map[string]want{
				imv1.DisbandedCondition:        {metav1.ConditionTrue, imv1.GroupDisbandedReason},
				imv1.CleanupSucceededCondition: {metav1.ConditionTrue, imv1.NoCleanupTriggersReason},
			},
		},
		{
			name:   "waits for a running cleanup Job",
			status: imv1.ChatGroupStatus{Disbanded: true},
			obs:    groupObservation{cleanup: []cleanupJob{{trigger: "a", job: "a-1", outcome: imv1.JobSucceeded}, {trigger: "b", job: "b-1", outcome: imv1.JobRunning}}},
			want:   map[string]want{imv1.CleanupSucceededCondition: {metav1.ConditionFalse, imv1.JobRunningReason}},
		},
		{
			name:   "reports a failed cleanup Job and an unready group",
			status: imv1.ChatGroupStatus{Disbanded: true, Triggers: []imv1.TriggerStatus{{Name: "b", LastJob: "b-1", LastJobOutcome: imv1.JobFailed}}},
			obs:    groupObservation{cleanup: []cleanupJob{{trigger: "a", job: "a-1"}, {trigger: "b", job: "b-1", outcome: imv1.JobFailed}}},
			want: map[string]want{
				imv1.CleanupSucceededCondition: {metav1.ConditionFalse, imv1.JobFailedReason},
				imv1.ReadyCondition:            {metav1.ConditionFalse, imv1.JobFailedReason},
			},
		},
		{
			name:   "reports succeeded cleanup",
			status: imv1.ChatGroupStatus{Disbanded: true},
			obs:    groupObservation{cleanup: []cleanupJob{{trigger: "a", job: "a-1", outcome: imv1.JobSucceeded}}},
			want:   map[string]want{imv1.CleanupSucceededCondition: {metav1.ConditionTrue, imv1.JobSucceededReason}},
		},
		{
			name:   "reports a disband entry that left the journal",
			status: imv1.ChatGroupStatus{Disbanded: true},
			obs:    groupObservation{cleanup: []cleanupJob{{trigger: "a", lost: true}}},
			want:   map[string]want{imv1.CleanupSucceededCondition: {metav1.ConditionFalse, imv1.JournalOverrunReason}},
		},
		{
			name:   "reports missed journal entries",
			status: imv1.ChatGroupStatus{Triggers: []imv1.TriggerStatus{{Name: "a", Missed: 2}}},
			want:   map[string]want{imv1.EventsMissedCondition: {metav1.ConditionTrue, imv1.JournalOverrunReason}},
		},
		{
			name:   "puts spec problems first",
			status: imv1.ChatGroupStatus{Triggers: []imv1.TriggerStatus{{Name: "b", LastJobOutcome: imv1.JobFailed}}},
			obs:    groupObservation{problems: []string{"ChatGroupTrigger x is invalid"}},
			want:   map[string]want{imv1.ReadyCondition: {metav1.ConditionFalse, imv1.InvalidSpecReason}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			cg := &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Status: tt.status}
			setGroupConditions(cg, tt.obs)
			g.Expect(cg.Status.ObservedGeneration).To(Equal(int64(3)))
			for typ, w := range tt.want {
				cond := meta.FindStatusCondition(cg.Status.Conditions, typ)
				if w == absent {
					g.Expect(cond).To(BeNil(), typ)
					continue
				}
				g.Expect(cond).NotTo(BeNil(), typ)
				g.Expect(cond.Status).To(Equal(w.status), typ)
				g.Expect(cond.Reason).To(Equal(w.reason), typ)
				g.Expect(cond.ObservedGeneration).To(Equal(int64(3)), typ)
			}
		})
	}

	t.Run("leaves Ready and observedGeneration alone after a transient error", func(t *testing.T) {
		g := NewWithT(t)
		cg := &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
		cg.Status.ObservedGeneration = 1
		setGroupConditions(cg, groupObservation{failed: true})
		g.Expect(cg.Status.ObservedGeneration).To(Equal(int64(1)))
		g.Expect(meta.FindStatusCondition(cg.Status.Conditions, imv1.ReadyCondition)).To(BeNil())
		g.Expect(meta.FindStatusCondition(cg.Status.Conditions, imv1.DisbandedCondition)).NotTo(BeNil())
	})
}

func TestTTLDeadline(t *testing.T) {
	succeededAt := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	group := func(disbanded bool, reason string) *imv1.ChatGroup {
		cg := &imv1.ChatGroup{Status: imv1.ChatGroupStatus{Disbanded: disbanded}}
		cg.Status.Conditions = []metav1.Condition{{
			Type: imv1.CleanupSucceededCondition, Status: metav1.ConditionTrue, Reason: reason,
			LastTransitionTime: metav1.NewTime(succeededAt),
		}}
		return cg
	}
	hour, minute := &metav1.Duration{Duration: time.Hour}, &metav1.Duration{Duration: time.Minute}
	tests := []struct {
		name    string
		cg      *imv1.ChatGroup
		cleanup []cleanupJob
		want    time.Time
		wantOK  bool
	}{
		{name: "uses the longest TTL", cg: group(true, imv1.JobSucceededReason),
			cleanup: []cleanupJob{{ttl: minute}, {ttl: hour}, {}}, want: succeededAt.Add(time.Hour), wantOK: true},
		{name: "needs a TTL", cg: group(true, imv1.JobSucceededReason), cleanup: []cleanupJob{{}}},
		{name: "needs succeeded cleanup Jobs", cg: group(true, imv1.NoCleanupTriggersReason), cleanup: []cleanupJob{{ttl: hour}}},
		{name: "needs a disbanded group", cg: group(false, imv1.JobSucceededReason), cleanup: []cleanupJob{{ttl: hour}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			deadline, ok := ttlDeadline(tt.cg, tt.cleanup)
			g.Expect(ok).To(Equal(tt.wantOK))
			g.Expect(deadline).To(Equal(tt.want))
		})
	}
}
