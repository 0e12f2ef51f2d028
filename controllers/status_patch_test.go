package controllers

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

func TestOwnedStatusPatch(t *testing.T) {
	g := NewWithT(t)
	patch, err := ownedStatusPatch(map[string]any{
		"announcedSeq": int64(3),
		"triggers":     []imv1.TriggerStatus(nil),
	})
	g.Expect(err).NotTo(HaveOccurred())
	data, err := patch.Data(nil)
	g.Expect(err).NotTo(HaveOccurred())
	var doc map[string]map[string]any
	g.Expect(json.Unmarshal(data, &doc)).To(Succeed())
	g.Expect(doc).To(HaveLen(1))
	g.Expect(doc["status"]).To(Equal(map[string]any{"announcedSeq": float64(3), "triggers": nil}))
}

// The reconciler's status patch must leave the callback server's fields
// alone even when it was computed from a group read before the callback
// server's first status write (the case a MergeFrom diff gets wrong, since
// status is omitzero and disbanded/memberCount are always serialised).
func TestChatGroupReconciler_patchStatus_keepsCallbackServerFields(t *testing.T) {
	c := integration(t)
	ns := newNamespace(t, c)
	g := NewWithT(t)
	ctx := context.Background()

	cg := newGroup(t, c, ns, "@TGS#OWNERSHIP", nil)
	key := client.ObjectKeyFromObject(cg)
	base := getGroup(g, c, key)
	g.Expect(base.Status).To(BeZero())

	// The callback server writes while the reconciler works on base.
	writeGroupStatus(t, c, key, func(st *imv1.ChatGroupStatus) {
		appendJournal(st, entry(1, imv1.EventDisbanded, "", "alice"))
		st.Disbanded, st.MemberCount = true, 3
	})

	r := &ChatGroupReconciler{client: c, writes: newStatusWrites()}
	modified := base.DeepCopy()
	setCondition(&modified.Status.Conditions, 1, imv1.ReadyCondition, metav1.ConditionTrue, imv1.SucceededReason, "ok")
	modified.Status.AnnouncedSeq = 1
	g.Expect(r.patchStatus(ctx, base, modified)).To(Succeed())

	got := getGroup(g, c, key).Status
	g.Expect(got.Disbanded).To(BeTrue())
	g.Expect(got.MemberCount).To(Equal(int32(3)))
	g.Expect(got.LastSeq).To(Equal(int64(1)))
	g.Expect(got.AnnouncedSeq).To(Equal(int64(1)))
	g.Expect(meta.IsStatusConditionTrue(got.Conditions, imv1.ReadyCondition)).To(BeTrue())
}

// Each owned-status type must name fields of its status type, with the
// same Go type and JSON name, or ownedPart and withoutOwned would panic.
func TestOwnedStatusTypes_matchTheirStatus(t *testing.T) {
	for _, tt := range []struct{ owned, status reflect.Type }{
		{reflect.TypeFor[groupOwnedStatus](), reflect.TypeFor[imv1.ChatGroupStatus]()},
		{reflect.TypeFor[receiverOwnedStatus](), reflect.TypeFor[imv1.ChatReceiverStatus]()},
		{reflect.TypeFor[triggerOwnedStatus](), reflect.TypeFor[imv1.ChatGroupTriggerStatus]()},
	} {
		t.Run(tt.owned.Name(), func(t *testing.T) {
			g := NewWithT(t)
			for i := range tt.owned.NumField() {
				o := tt.owned.Field(i)
				s, ok := tt.status.FieldByName(o.Name)
				g.Expect(ok).To(BeTrue(), "%s.%s", tt.status.Name(), o.Name)
				g.Expect(s.Type).To(Equal(o.Type), o.Name)
				name, _, _ := strings.Cut(s.Tag.Get("json"), ",")
				g.Expect(o.Tag.Get("json")).To(Equal(name), "%s: the JSON name, without omitempty", o.Name)
			}
		})
	}
}

func TestWithoutOwned(t *testing.T) {
	g := NewWithT(t)
	st := imv1.ChatGroupStatus{ObservedGeneration: 2, AnnouncedSeq: 3, LastSeq: 4, Triggers: []imv1.TriggerStatus{{Name: "t"}}}
	g.Expect(withoutOwned[groupOwnedStatus](st)).To(Equal(imv1.ChatGroupStatus{LastSeq: 4}))
	g.Expect(st.AnnouncedSeq).To(Equal(int64(3)), "the argument is a copy")
	g.Expect(ownedPart[groupOwnedStatus](&st)).To(Equal(groupOwnedStatus{ObservedGeneration: 2, AnnouncedSeq: 3, Triggers: st.Triggers}))
}
