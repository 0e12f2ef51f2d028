package providertest_test

import (
	"testing"

	. "github.com/onsi/gomega"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim/openimtest"
	"chatgroup.dev/chatgroup-operator/internal/provider/providertest"
	"chatgroup.dev/chatgroup-operator/internal/provider/registry"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
)

// TestBuild_decodesOnTheServer feeds every callback each Sender builds, for
// the actions it supports, to its provider's decoder. The two sides are
// written separately from the protocol notes, so agreement here is a check
// on both.
func TestBuild_decodesOnTheServer(t *testing.T) {
	params := callbacks.Params{
		GroupID: "@TGS#2J4SZEAEL", Users: []string{"bob"}, Operator: "leckie", Owner: "leckie",
		PreviousOwner: "leckie", GroupName: "MyFirstGroup", Reason: "spam", Role: "Admin",
	}
	tests := []struct {
		action      callbacks.Action
		kind        imv1.EventKind
		wantMembers []string
		wantReason  imv1.LeaveReason
	}{
		{action: callbacks.Create, kind: imv1.EventCreated, wantMembers: []string{"bob", "leckie"}},
		{action: callbacks.Join, kind: imv1.EventMembersJoined, wantMembers: []string{"bob"}},
		{action: callbacks.Quit, kind: imv1.EventMembersLeft, wantMembers: []string{"bob"}, wantReason: imv1.LeaveQuit},
		{action: callbacks.Kick, kind: imv1.EventMembersLeft, wantMembers: []string{"bob"}, wantReason: imv1.LeaveKicked},
		{action: callbacks.Disband, kind: imv1.EventDisbanded, wantMembers: []string{"bob"}},
		{action: callbacks.Info, kind: imv1.EventInfoChanged},
		{action: callbacks.Owner, kind: imv1.EventOwnerChanged},
		{action: callbacks.MemberField, kind: imv1.EventInfoChanged, wantMembers: []string{"bob"}},
	}
	for _, sender := range providertest.Senders() {
		p, ok := registry.Get(sender.Name())
		NewWithT(t).Expect(ok).To(BeTrue(), "the provider of the %s Sender is registered", sender.Name())
		for _, tt := range tests {
			if _, err := sender.Command(tt.action); err != nil {
				continue
			}
			t.Run(string(p.Name())+" "+string(tt.action)+" decodes as "+string(tt.kind), func(t *testing.T) {
				g := NewWithT(t)
				cbs, err := sender.Build(tt.action, params)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(cbs).To(HaveLen(1))
				ev, err := p.Decode(cbs[0].Command, cbs[0].Body)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(ev.Kind).To(Equal(tt.kind))
				g.Expect(ev.GroupID).To(Equal(params.GroupID))
				g.Expect(ev.Reason).To(Equal(tt.wantReason))
				var members []string
				for _, m := range ev.Members {
					members = append(members, m.UserID)
				}
				g.Expect(members).To(ConsistOf(tt.wantMembers))
			})
		}
	}
}

func TestNew(t *testing.T) {
	g := NewWithT(t)
	p, err := providertest.New("tencent", "1400000000", "tok")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p).To(Equal(tencenttest.Sender{AppID: "1400000000", Token: "tok"}))
	p, err = providertest.New("OpenIM", "", "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p).To(Equal(openimtest.Sender{}))
	_, err = providertest.New("slack", "", "")
	g.Expect(err).To(MatchError(ContainSubstring("Tencent or OpenIM")))
}
