package testsupport

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/loadgen"
	"chatgroup.dev/chatgroup-operator/internal/provider/providertest"
)

// Receiver is a ChatReceiver fixture: the receiver, its Secret, and the
// status the ChatReceiver reconciler would give it (its webhook paths).
type Receiver struct {
	Namespace, Name string
	Provider        imv1.Provider
	// AppID defaults to the provider's sample appID.
	AppID string
	// Token is required; PreviousToken, Username and Password are optional.
	Token, PreviousToken string
	Username, Password   string
	// HeaderToken is the Secret's optional headerToken (OpenIM).
	HeaderToken string
	GroupLabels map[string]string
	RateLimit   *imv1.RateLimit
}

// Objects returns the ready receiver and its Secret, for a fake client.
// The receiver's UID is its name.
func (r Receiver) Objects() (*imv1.ChatReceiver, *corev1.Secret) {
	appID := r.AppID
	if appID == "" {
		appID = providertest.SampleAppID(r.Provider)
	}
	rcv := &imv1.ChatReceiver{
		ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace, UID: types.UID(r.Name)},
		Spec: imv1.ChatReceiverSpec{Provider: r.Provider, AppID: appID, SecretRef: imv1.SecretReference{Name: r.Name},
			GroupLabels: groupLabels(r.GroupLabels), RateLimit: r.RateLimit},
		Status: imv1.ChatReceiverStatus{WebhookPath: imv1.WebhookPath(r.Namespace, r.Name, r.Token)},
	}
	data := map[string][]byte{imv1.TokenKey: []byte(r.Token)}
	if r.PreviousToken != "" {
		rcv.Status.PreviousWebhookPath = imv1.WebhookPath(r.Namespace, r.Name, r.PreviousToken)
		data[imv1.PreviousTokenKey] = []byte(r.PreviousToken)
	}
	if r.Username != "" {
		data[imv1.UsernameKey], data[imv1.PasswordKey] = []byte(r.Username), []byte(r.Password)
	}
	if r.HeaderToken != "" {
		data[imv1.HeaderTokenKey] = []byte(r.HeaderToken)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace}, Data: data}
	return rcv, secret
}

// Create creates the Secret and the receiver through c, then sets the
// receiver's status.
func (r Receiver) Create(ctx context.Context, c client.Client) (*imv1.ChatReceiver, error) {
	rcv, secret := r.Objects()
	rcv.UID = ""
	status := rcv.Status
	if err := c.Create(ctx, secret); err != nil {
		return nil, fmt.Errorf("creating the Secret of %s: %w", r.Name, err)
	}
	if err := c.Create(ctx, rcv); err != nil {
		return nil, fmt.Errorf("creating the receiver %s: %w", r.Name, err)
	}
	rcv.Status = status
	if err := c.Status().Update(ctx, rcv); err != nil {
		return nil, fmt.Errorf("setting the status of %s: %w", r.Name, err)
	}
	return rcv, nil
}

// CreateNamespace creates a namespace.
func CreateNamespace(ctx context.Context, c client.Client, ns string) error {
	return c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
}

// AllowJobs lets a ServiceAccount create Jobs in its namespace, as the
// namespace's administrator does for a trigger's ServiceAccount: the
// operator creates trigger Jobs as that ServiceAccount.
func AllowJobs(ctx context.Context, c client.Client, ns, serviceAccount string) error {
	name := "create-jobs-" + serviceAccount
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create"}}},
	}
	if err := c.Create(ctx, role); err != nil {
		return fmt.Errorf("creating the Role %s/%s: %w", ns, name, err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: serviceAccount}},
	}
	if err := c.Create(ctx, binding); err != nil {
		return fmt.Errorf("creating the RoleBinding %s/%s: %w", ns, name, err)
	}
	return nil
}

// LoadReceiver creates namespace ns with a ready receiver named "load"
// that no rate limit slows down, and returns the load generator's target
// (without base URLs).
func LoadReceiver(ctx context.Context, c client.Client, ns string, provider imv1.Provider) (loadgen.Target, error) {
	r := Receiver{Namespace: ns, Name: "load", Provider: provider, Token: "load-token",
		RateLimit: &imv1.RateLimit{RequestsPerSecond: 1000000, Burst: 1000000}}
	if err := CreateNamespace(ctx, c, ns); err != nil {
		return loadgen.Target{}, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	rcv, err := r.Create(ctx, c)
	if err != nil {
		return loadgen.Target{}, err
	}
	return loadgen.Target{Token: r.Token, AppID: rcv.Spec.AppID, WebhookPath: rcv.Status.WebhookPath}, nil
}

// groupLabels converts labels to the API's type.
func groupLabels(labels map[string]string) map[string]imv1.LabelValue {
	if labels == nil {
		return nil
	}
	out := make(map[string]imv1.LabelValue, len(labels))
	for k, v := range labels {
		out[k] = imv1.LabelValue(v)
	}
	return out
}
