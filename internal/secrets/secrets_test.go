package secrets

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// countingClient is a fake API server that counts GETs.
func countingClient(gets *int, objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			*gets++
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
}

func TestReader_cachesForTTL(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	gets := 0
	key := types.NamespacedName{Namespace: "ns", Name: "token"}
	c := countingClient(&gets, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "token"},
		Data: map[string][]byte{"token": []byte("one")}})
	now := time.Unix(1000, 0)
	r := NewReader(c, 5*time.Second)
	r.now = func() time.Time { return now }

	s, err := r.Get(ctx, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(s.Data["token"])).To(Equal("one"))

	// A change within the TTL is not seen yet, and costs no request.
	g.Expect(c.Update(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "token"},
		Data: map[string][]byte{"token": []byte("two")}})).To(Succeed())
	now = now.Add(4 * time.Second)
	_, err = r.Get(ctx, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(gets).To(Equal(1))

	// After the TTL the Secret is read again.
	now = now.Add(2 * time.Second)
	s, err = r.Get(ctx, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(s.Data["token"])).To(Equal("two"))
	g.Expect(gets).To(Equal(2))

	// Forget drops the cached read.
	r.Forget(key)
	_, _ = r.Get(ctx, key)
	g.Expect(gets).To(Equal(3))
}

func TestReader_cachesNotFound(t *testing.T) {
	g := NewWithT(t)
	gets := 0
	r := NewReader(countingClient(&gets), time.Minute)
	for range 3 {
		_, err := r.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: "missing"})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}
	g.Expect(gets).To(Equal(1))
}

func TestReader_boundedEntries(t *testing.T) {
	g := NewWithT(t)
	gets := 0
	r := NewReader(countingClient(&gets), time.Minute)
	r.maxEntries = 4
	for i := range 10 {
		_, _ = r.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: string(rune('a' + i))})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	g.Expect(len(r.entries)).To(BeNumerically("<=", 4))
}

// An API server that cannot be reached must not turn every callback away:
// the last good read stays in use for MaxStale. A Secret the API server
// says is gone is not served stale.
func TestReader_servesTheLastGoodReadWhileTheAPIServerIsDown(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	key := types.NamespacedName{Namespace: "ns", Name: "token"}
	var down, gone bool
	c := fake.NewClientBuilder().WithObjects(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "token"},
		Data: map[string][]byte{"token": []byte("one")}}).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			switch {
			case down:
				return apierrors.NewServiceUnavailable("the API server is restarting")
			case gone:
				return apierrors.NewNotFound(corev1.Resource("secrets"), key.Name)
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	now := time.Unix(1000, 0)
	r := NewReader(c, 5*time.Second)
	r.now = func() time.Time { return now }
	_, err := r.Get(ctx, key)
	g.Expect(err).NotTo(HaveOccurred())

	down = true
	now = now.Add(MaxStale - time.Second)
	s, err := r.Get(ctx, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(s.Data["token"])).To(Equal("one"))

	now = now.Add(6 * time.Second) // past MaxStale, and past the TTL of the stale read
	_, err = r.Get(ctx, key)
	g.Expect(apierrors.IsServiceUnavailable(err)).To(BeTrue(), "no older than MaxStale")

	down, gone = false, true
	r2 := NewReader(c, 5*time.Second)
	gone = false
	_, err = r2.Get(ctx, key)
	g.Expect(err).NotTo(HaveOccurred())
	gone = true
	r2.now = func() time.Time { return time.Now().Add(time.Minute) }
	_, err = r2.Get(ctx, key)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a deleted Secret is never served stale")
}
