// Command send-callback sends one group callback to the operator the way
// Tencent Cloud Chat or OpenIM would: same URL, query, headers, signature
// and body. It prints the reply and exits non-zero unless the operator
// acknowledged the event.
//
// With --receiver it reads the ChatReceiver's provider, appID, webhook path
// and token from the cluster; otherwise pass --provider, --path, --token and
// --app-id.
//
// When the receiver resyncs from a fake provider on this machine (make
// run-local starts one per sample receiver), it first makes the change in
// that provider's truth, as the platform would, and then sends the
// callback; with --drop it sends nothing, as if the callback were lost, so
// that only a resync can repair the ChatGroup.
//
//	go run ./hack/send-callback --receiver default/tencent --command join --group '@TGS#2J4SZEAEL' --users bob
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/callbacks"
	"chatgroup.dev/chatgroup-operator/internal/cli"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim/openimtest"
	"chatgroup.dev/chatgroup-operator/internal/provider/providertest"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent/tencenttest"
)

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ error }

type options struct {
	url, kubeconfig, receiver     string
	provider, path, token         string
	appID                         string
	command, group, users         string
	operator, owner, prevOwner    string
	reason, name, notification    string
	groupType, role, nameCard     string
	eventTime, opID               string
	numericEventTime, openIMQuery bool
	drop                          bool
	timeout                       time.Duration
}

func main() {
	cli.SetUpLogging(os.Stderr, false)
	var o options
	fs := cli.NewFlagSet("send-callback", "go run ./hack/send-callback --receiver NAMESPACE/NAME --command COMMAND --group ID [flags]")
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8082", "Base URL of the operator's callback server.")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Kubeconfig for --receiver (default: $KUBECONFIG, then ~/.kube/config).")
	fs.StringVar(&o.receiver, "receiver", "", "ChatReceiver as namespace/name (or name, in the kubeconfig's namespace) to read the provider, path and token from.")
	fs.StringVar(&o.provider, "provider", "", "tencent or openim (default: the receiver's provider).")
	fs.StringVar(&o.path, "path", "", "Webhook path, the receiver's status.webhookPath (instead of --receiver).")
	fs.StringVar(&o.token, "token", "", "Tencent signing token (instead of --receiver).")
	fs.StringVar(&o.appID, "app-id", "", "Application ID of Tencent callbacks (default: the receiver's appID).")
	fs.StringVar(&o.command, "command", "", "What happened: "+strings.Join(actionNames(), ", ")+" (required).")
	fs.StringVar(&o.group, "group", "", "Group ID (required).")
	fs.StringVar(&o.users, "users", "", "Comma-separated user IDs: the members created, joining, leaving or in the group at the disband; for member-field the member.")
	fs.StringVar(&o.operator, "operator", "", "User who made the change (default depends on the command).")
	fs.StringVar(&o.owner, "owner", "", "Group owner (create, disband) or new owner (owner).")
	fs.StringVar(&o.prevOwner, "previous-owner", "", "Owner before the transfer (owner).")
	fs.StringVar(&o.reason, "reason", "", "Kick reason (OpenIM only).")
	fs.StringVar(&o.name, "name", "", "Group name (create, disband) or new name (info).")
	fs.StringVar(&o.notification, "notification", "", "New group notice (info).")
	fs.StringVar(&o.groupType, "type", "", "Tencent group type (default Public).")
	fs.StringVar(&o.role, "role", "", "New role for member-field: Admin or Member.")
	fs.StringVar(&o.nameCard, "name-card", "", "New group nickname for member-field.")
	fs.StringVar(&o.eventTime, "event-time", "", "Event time as RFC 3339 or Unix milliseconds (default: now).")
	fs.StringVar(&o.opID, "operation-id", "", "OpenIM operation ID, sent in a header (default: generated).")
	fs.BoolVar(&o.numericEventTime, "numeric-event-time", false, "Send Tencent's EventTime as a JSON number instead of a quoted string.")
	fs.BoolVar(&o.openIMQuery, "openim-content-type-query", false, "Append a JSON content type query to OpenIM URLs, as OpenIM's docs show.")
	fs.BoolVar(&o.drop, "drop", false, "Change the fake provider's truth but send no callback, as if the callback were lost (needs a receiver that resyncs from make run-local's fake provider).")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "Timeout for the whole command.")
	cli.Parse(fs)

	err := run(o)
	var uerr usageError
	switch {
	case errors.As(err, &uerr):
		fmt.Fprintf(os.Stderr, "send-callback: %v\nRun with -h for the flags.\n", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "send-callback: %v\n", err)
		os.Exit(1)
	}
}

func actionNames() []string {
	names := make([]string, len(callbacks.Actions))
	for i, a := range callbacks.Actions {
		names[i] = string(a)
	}
	return names
}

func run(o options) error {
	action, params, err := parseChange(o)
	if err != nil {
		return usageError{err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ep, fake, err := endpoint(ctx, o)
	if err != nil {
		return err
	}
	cbs, err := ep.Sender.Build(action, params)
	if err != nil {
		return usageError{err}
	}
	httpClient := &http.Client{}
	if err := changeTruth(ctx, httpClient, fake, o.drop, restfake.Change{Action: action, Params: params}); err != nil {
		return err
	}
	if o.drop {
		fmt.Printf("Dropped %d callback(s) (--drop): only a resync tells the operator about this change\n", len(cbs))
		return nil
	}
	for _, cb := range cbs {
		if err := send(ctx, httpClient, ep, o.url, cb); err != nil {
			return err
		}
	}
	return nil
}

// parseChange turns the flags describing the group change into Params.
func parseChange(o options) (callbacks.Action, callbacks.Params, error) {
	if o.command == "" || o.group == "" {
		return "", callbacks.Params{}, errors.New("--command and --group are required")
	}
	action, err := callbacks.ParseAction(o.command)
	if err != nil {
		return "", callbacks.Params{}, err
	}
	at, err := parseEventTime(o.eventTime)
	if err != nil {
		return "", callbacks.Params{}, err
	}
	return action, callbacks.Params{
		GroupID:       o.group,
		Users:         splitList(o.users),
		Operator:      o.operator,
		Owner:         o.owner,
		PreviousOwner: o.prevOwner,
		Reason:        o.reason,
		GroupName:     o.name,
		Notification:  o.notification,
		GroupType:     o.groupType,
		Role:          o.role,
		NameCard:      o.nameCard,
		EventTime:     at,
		OperationID:   o.opID,
	}, nil
}

func parseEventTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--event-time %q is neither RFC 3339 nor Unix milliseconds", s)
	}
	return t, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// changeTruth makes the change in the truth of the receiver's fake
// provider, if it has one. A resync endpoint on this machine that is not a
// fake (a real OpenIM server, say) is left alone, unless --drop needs it.
func changeTruth(ctx context.Context, c *http.Client, fake string, drop bool, ch restfake.Change) error {
	if fake == "" {
		if drop {
			return usageError{errors.New("--drop needs --receiver with a receiver that resyncs from a fake provider on " +
				"this machine (make run-local configures the sample receivers so)")}
		}
		return nil
	}
	err := restfake.PostChanges(ctx, c, fake, ch)
	switch {
	case errors.Is(err, restfake.ErrNotAFake) && !drop:
		fmt.Printf("The receiver's resync endpoint %s is not a fake provider; sending the callback only\n", fake)
		return nil
	case err != nil:
		return err
	}
	fmt.Printf("Changed group %s in the fake provider's truth at %s\n", ch.Params.GroupID, fake)
	return nil
}

// endpoint resolves where to send and how to sign: from the receiver in
// the cluster, from flags, or both, with flags taking precedence. It also
// returns the receiver's fake provider, if it resyncs from one.
func endpoint(ctx context.Context, o options) (providertest.Endpoint, string, error) {
	var ep providertest.Endpoint
	var fake string
	if o.receiver != "" {
		var err error
		if ep, fake, err = receiverEndpoint(ctx, o.kubeconfig, o.receiver); err != nil {
			return ep, "", err
		}
	}
	provider := o.provider
	if provider == "" && ep.Sender != nil {
		provider = string(ep.Sender.Name())
	}
	ep.AppID, ep.Token, ep.Path = firstSet(o.appID, ep.AppID), firstSet(o.token, ep.Token), firstSet(o.path, ep.Path)
	if ep.Path == "" {
		return ep, "", usageError{errors.New("pass --receiver, or --path with the receiver's status.webhookPath")}
	}
	if provider == "" {
		return ep, "", usageError{errors.New("pass --provider tencent|openim, or --receiver")}
	}
	sender, err := providertest.New(provider, ep.AppID, ep.Token)
	if err != nil {
		return ep, "", usageError{err}
	}
	ep.Sender = withFlags(sender, o)
	return ep, fake, nil
}

// withFlags applies the flags that only concern one provider's Sender.
func withFlags(sender callbacks.Sender, o options) callbacks.Sender {
	switch v := sender.(type) {
	case tencenttest.Sender:
		v.NumericEventTime = o.numericEventTime
		return v
	case openimtest.Sender:
		v.ContentTypeQuery = o.openIMQuery
		return v
	}
	return sender
}

func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// receiverEndpoint reads the ChatReceiver and its token Secret, and
// returns the receiver's resync endpoint when it is on this machine.
func receiverEndpoint(ctx context.Context, kubeconfig, receiver string) (providertest.Endpoint, string, error) {
	cfg, loader, err := cli.Kubeconfig(kubeconfig)
	if err != nil {
		return providertest.Endpoint{}, "", err
	}
	key, err := receiverKey(loader, receiver)
	if err != nil {
		return providertest.Endpoint{}, "", err
	}
	c, err := cli.NewClient(cfg)
	if err != nil {
		return providertest.Endpoint{}, "", err
	}
	ep, err := providertest.ForReceiver(ctx, c, key)
	if err != nil {
		return ep, "", err
	}
	var rcv imv1.ChatReceiver
	if err := c.Get(ctx, key, &rcv); err != nil {
		return ep, "", fmt.Errorf("reading ChatReceiver %s: %w", key, err)
	}
	fake, _ := restfake.LocalEndpoint(&rcv)
	return ep, fake, nil
}

func receiverKey(loader clientcmd.ClientConfig, receiver string) (types.NamespacedName, error) {
	if ns, name, ok := strings.Cut(receiver, "/"); ok {
		if ns == "" || name == "" {
			return types.NamespacedName{}, usageError{fmt.Errorf("--receiver %q is not namespace/name", receiver)}
		}
		return types.NamespacedName{Namespace: ns, Name: name}, nil
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		return types.NamespacedName{}, fmt.Errorf("reading the kubeconfig's namespace: %w", err)
	}
	return types.NamespacedName{Namespace: ns, Name: receiver}, nil
}

// send posts one callback, prints the outcome and fails unless the server
// answered 2xx with a success reply.
func send(ctx context.Context, c *http.Client, ep providertest.Endpoint, base string, cb callbacks.Callback) error {
	req, err := ep.Sender.Request(ctx, base, ep.Path, cb)
	if err != nil {
		return usageError{err}
	}
	fmt.Printf("POST %s (%s %s)\n", imv1.MaskWebhookPath(req.URL.Path), ep.Sender.Name(), cb.Command)
	resp, err := c.Do(req)
	if err != nil {
		// Drop the URL from the message: it holds the webhook path.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("sending %s to %s: %w (is the operator running?)", cb.Command, base, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the reply: %w", err)
	}
	fmt.Printf("%s\n%s\n", resp.Status, strings.TrimSpace(string(body)))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s was refused: %s", cb.Command, resp.Status)
	}
	if err := ep.Sender.CheckReply(body); err != nil {
		return fmt.Errorf("%s: %w", cb.Command, err)
	}
	return nil
}
