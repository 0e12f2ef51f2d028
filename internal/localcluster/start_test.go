package localcluster

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestStart runs the whole control plane: a Job must succeed on the kwok
// node, and Stop must leave no process behind.
func TestStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane (run without -short)")
	}
	g := NewWithT(t)
	root, err := FindRepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	stateDir := filepath.Join(root, "bin", "localcluster-test")

	c, err := Start(context.Background(), Options{StateDir: stateDir, Logf: t.Logf})
	g.Expect(err).NotTo(HaveOccurred())
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop()
		}
	})
	g.Expect(c.Kubeconfig).To(BeARegularFile())

	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	g.Expect(err).NotTo(HaveOccurred())
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: metav1.NamespaceDefault},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "c", Image: "busybox:1.36", Command: []string{"true"}}},
		}}},
	}
	ctx := t.Context()
	created := time.Now()
	_, err = cs.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		got, err := cs.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Status.Succeeded).To(BeEquivalentTo(1))
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	t.Logf("Job succeeded %.1fs after it was created", time.Since(created).Seconds())

	g.Expect(c.Stop()).To(Succeed())
	stopped = true
	g.Expect(findProcesses(c.StateDir, c.binaries())).To(BeEmpty(), "every process has exited")
	g.Expect(c.Kubeconfig).NotTo(BeAnExistingFile())
}
