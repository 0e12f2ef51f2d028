package localcluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// KwokNodeAnnotation marks a node as fake; kwok plays its kubelet.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

// createNode registers the fake node. kwok's node-initialize stage fills in
// its status (conditions, addresses, a large capacity) and the heartbeat
// stage keeps it Ready. It has no taint, so Pods need no toleration.
func createNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        name,
		Annotations: map[string]string{KwokNodeAnnotation: "fake"},
		Labels: map[string]string{
			"type":                          "kwok",
			"kubernetes.io/hostname":        name,
			"kubernetes.io/os":              "linux",
			"kubernetes.io/arch":            "amd64",
			"kubernetes.io/role":            "agent",
			"node-role.kubernetes.io/agent": "",
		},
	}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating node %s: %w", name, err)
	}
	return nil
}

// nodeReady holds once the node is Ready and carries no NoSchedule or
// NoExecute taint: the node lifecycle controller taints a node that is not
// Ready yet, and the scheduler would not place Pods on it until the taint
// is gone.
func nodeReady(cs kubernetes.Interface, name string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status == corev1.ConditionTrue
			}
		}
		for _, t := range node.Spec.Taints {
			if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
				return false, fmt.Errorf("node %s has taint %s", name, t.ToString())
			}
		}
		return ready, nil
	}
}

// defaultServiceAccountExists holds once kube-controller-manager's service
// account controller has created default/default. Namespaced workloads
// that name no ServiceAccount need it.
func defaultServiceAccountExists(cs kubernetes.Interface) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
}
