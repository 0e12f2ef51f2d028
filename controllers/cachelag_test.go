package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

func TestStatusWrites(t *testing.T) {
	g := NewWithT(t)
	group := func(uid, rv string) *imv1.ChatGroup {
		return &imv1.ChatGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "g", UID: types.UID(uid), ResourceVersion: rv}}
	}
	w := newStatusWrites()
	g.Expect(w.stale(group("a", "5"))).To(BeFalse(), "nothing written yet")

	w.record(group("a", "10"))
	g.Expect(w.stale(group("a", "9"))).To(BeTrue(), "older than the write")
	g.Expect(w.stale(group("a", "10"))).To(BeFalse())
	g.Expect(w.stale(group("a", "11"))).To(BeFalse())
	g.Expect(w.stale(group("b", "9"))).To(BeFalse(), "another incarnation")
	g.Expect(w.stale(group("a", "not-a-number"))).To(BeFalse(), "incomparable versions count as fresh")

	w.forget(client.ObjectKeyFromObject(group("a", "")))
	g.Expect(w.stale(group("a", "9"))).To(BeFalse())
}
