package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

func TestTriggerMatches(t *testing.T) {
	kicked := imv1.JournalEntry{Kind: imv1.EventMembersLeft, Reason: imv1.LeaveKicked}
	quit := imv1.JournalEntry{Kind: imv1.EventMembersLeft, Reason: imv1.LeaveQuit}
	joined := imv1.JournalEntry{Kind: imv1.EventMembersJoined}
	disbanded := imv1.JournalEntry{Kind: imv1.EventDisbanded}
	tests := []struct {
		name  string
		on    []imv1.TriggerEvent
		entry imv1.JournalEntry
		want  bool
	}{
		{name: "MemberKicked matches a kick", on: []imv1.TriggerEvent{imv1.TriggerMemberKicked}, entry: kicked, want: true},
		{name: "MemberKicked does not match a quit", on: []imv1.TriggerEvent{imv1.TriggerMemberKicked}, entry: quit, want: false},
		{name: "MembersLeft matches a kick", on: []imv1.TriggerEvent{imv1.TriggerMembersLeft}, entry: kicked, want: true},
		{name: "MembersLeft matches a quit", on: []imv1.TriggerEvent{imv1.TriggerMembersLeft}, entry: quit, want: true},
		{name: "MembersJoined matches a join", on: []imv1.TriggerEvent{imv1.TriggerMembersJoined}, entry: joined, want: true},
		{name: "Disbanded does not match a join", on: []imv1.TriggerEvent{imv1.TriggerDisbanded}, entry: joined, want: false},
		{name: "any listed event matches", on: []imv1.TriggerEvent{imv1.TriggerMemberKicked, imv1.TriggerDisbanded}, entry: disbanded, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(triggerMatches(tt.on, &tt.entry)).To(Equal(tt.want))
		})
	}
}

func validTriggerSpec() imv1.ChatGroupTriggerSpec {
	return imv1.ChatGroupTriggerSpec{
		On: []imv1.TriggerEvent{imv1.TriggerDisbanded},
		JobTemplate: &batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyOnFailure,
			Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
		}}}},
	}
}

func TestValidateTrigger(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*imv1.ChatGroupTriggerSpec)
		wantErr string
	}{
		{name: "accepts a valid spec", mutate: func(*imv1.ChatGroupTriggerSpec) {}},
		{name: "rejects an invalid selector", wantErr: "invalid selector", mutate: func(s *imv1.ChatGroupTriggerSpec) {
			s.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}
		}},
		{name: "rejects a template without containers", wantErr: "no containers", mutate: func(s *imv1.ChatGroupTriggerSpec) {
			s.JobTemplate.Spec.Template.Spec.Containers = nil
		}},
		{name: "rejects the default restart policy", wantErr: "restartPolicy", mutate: func(s *imv1.ChatGroupTriggerSpec) {
			s.JobTemplate.Spec.Template.Spec.RestartPolicy = ""
		}},
		{name: "rejects an empty on", wantErr: "no events", mutate: func(s *imv1.ChatGroupTriggerSpec) { s.On = nil }},
		{name: "rejects a trigger without an action", wantErr: "no action", mutate: func(s *imv1.ChatGroupTriggerSpec) { s.JobTemplate = nil }},
		{name: "accepts a CloudEvent alone", mutate: func(s *imv1.ChatGroupTriggerSpec) {
			s.JobTemplate, s.CloudEvent = nil, &imv1.CloudEventAction{URL: "https://flux.example/hook/abc"}
		}},
		{name: "accepts a CloudEvent to the default sink", mutate: func(s *imv1.ChatGroupTriggerSpec) {
			s.CloudEvent = &imv1.CloudEventAction{SecretRef: &corev1.LocalObjectReference{Name: "token"}}
		}},
		{name: "rejects a CloudEvent url that is not http", wantErr: "cloudEvent url", mutate: func(s *imv1.ChatGroupTriggerSpec) {
			s.CloudEvent = &imv1.CloudEventAction{URL: "ftp://flux.example/hook"}
		}},
		{name: "rejects a secretRef without a name", wantErr: "secretRef has no name", mutate: func(s *imv1.ChatGroupTriggerSpec) {
			s.CloudEvent = &imv1.CloudEventAction{URL: "http://sink.example/", SecretRef: &corev1.LocalObjectReference{}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			spec := validTriggerSpec()
			tt.mutate(&spec)
			err := validateTrigger(&spec)
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
			} else {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			}
		})
	}
}

func journalOf(seqs ...int64) imv1.ChatGroupStatus {
	st := imv1.ChatGroupStatus{}
	for _, s := range seqs {
		st.Journal = append(st.Journal, imv1.JournalEntry{Seq: s, Kind: imv1.EventMembersJoined})
		st.LastSeq = s
	}
	return st
}

func TestCatchUp(t *testing.T) {
	tests := []struct {
		name       string
		cursor     int64
		status     imv1.ChatGroupStatus
		wantCursor int64
		wantMissed int64
	}{
		{name: "keeps a cursor inside the ring", cursor: 3, status: journalOf(2, 3, 4), wantCursor: 3},
		{name: "keeps a cursor just before the ring", cursor: 1, status: journalOf(2, 3, 4), wantCursor: 1},
		{name: "counts entries that left the ring", cursor: 1, status: journalOf(5, 6), wantCursor: 4, wantMissed: 3},
		{name: "counts from zero for a trigger that saw an empty group", cursor: 0, status: journalOf(5, 6), wantCursor: 4, wantMissed: 4},
		{name: "keeps an up-to-date cursor", cursor: 6, status: journalOf(5, 6), wantCursor: 6},
		{name: "restarts a cursor ahead of the journal", cursor: 9, status: journalOf(5, 6), wantCursor: 4},
		{name: "counts everything when the journal is empty", cursor: 2, status: imv1.ChatGroupStatus{LastSeq: 5}, wantCursor: 5, wantMissed: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			cursor, missed := catchUp(tt.cursor, &tt.status)
			g.Expect(cursor).To(Equal(tt.wantCursor))
			g.Expect(missed).To(Equal(tt.wantMissed))
		})
	}
}

func TestNewCursor(t *testing.T) {
	g := NewWithT(t)
	// A new trigger handles every entry still in the journal, and what
	// left the ring before it existed is not missed.
	st := journalOf(5, 6)
	g.Expect(newCursor(&st)).To(Equal(int64(4)))
	_, missed := catchUp(newCursor(&st), &st)
	g.Expect(missed).To(BeZero())
	g.Expect(newCursor(&imv1.ChatGroupStatus{})).To(BeZero())
}

func TestPendingEntries(t *testing.T) {
	g := NewWithT(t)
	st := journalOf(3, 4, 5)
	g.Expect(pendingEntries(0, st.Journal)).To(HaveLen(3))
	g.Expect(pendingEntries(4, st.Journal)).To(ConsistOf(HaveField("Seq", int64(5))))
	g.Expect(pendingEntries(5, st.Journal)).To(BeEmpty())
}

func TestSelectTriggers(t *testing.T) {
	g := NewWithT(t)
	cg := &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"cleanup": "true"}}}
	trigger := func(name string, selector map[string]string, mutate func(*imv1.ChatGroupTriggerSpec)) imv1.ChatGroupTrigger {
		spec := validTriggerSpec()
		spec.Selector.MatchLabels = selector
		mutate(&spec)
		return imv1.ChatGroupTrigger{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	}
	noop := func(*imv1.ChatGroupTriggerSpec) {}
	triggers := []imv1.ChatGroupTrigger{
		trigger("z-matching", map[string]string{"cleanup": "true"}, noop),
		trigger("a-everything", nil, noop),
		trigger("other", map[string]string{"cleanup": "false"}, noop),
		trigger("broken", map[string]string{"cleanup": "true"}, func(s *imv1.ChatGroupTriggerSpec) {
			s.JobTemplate.Spec.Template.Spec.Containers = nil
		}),
		trigger("unparsable", nil, func(s *imv1.ChatGroupTriggerSpec) {
			s.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}
		}),
	}

	m := selectTriggers(cg, triggers)
	var run []string
	for _, trig := range m.run {
		run = append(run, trig.Name)
	}
	g.Expect(run).To(Equal([]string{"a-everything", "z-matching"}))
	g.Expect(m.keep).To(Equal(map[string]bool{"a-everything": true, "z-matching": true, "broken": true, "unparsable": true}))
	g.Expect(m.problems).To(ConsistOf(ContainSubstring("broken")))

	cg.Status = journalOf(7, 8)
	cg.Status.Triggers = []imv1.TriggerStatus{{Name: "other", Cursor: 8}, {Name: "broken", Cursor: 5}, {Name: "z-matching", Cursor: 8}}
	syncTriggerStatuses(cg, m)
	g.Expect(cg.Status.Triggers).To(Equal([]imv1.TriggerStatus{
		{Name: "a-everything", Cursor: 6}, {Name: "broken", Cursor: 5}, {Name: "z-matching", Cursor: 8},
	}))
}
