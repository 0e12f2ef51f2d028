package openim

// The REST client the resync loop reads groups with: an admin token from
// /auth/get_admin_token, cached and refreshed (each new token demotes the
// previous one, so never one per call), /group/get_groups_info and
// /group/get_group_member_list.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// REST API paths.
const (
	PathGetAdminToken      = "/auth/get_admin_token"
	PathGetGroupsInfo      = "/group/get_groups_info"
	PathGetGroupMemberList = "/group/get_group_member_list"
	PathGetGroups          = "/group/get_groups"
	// TokenHeader carries the admin token.
	TokenHeader = "token"
)

// GroupStatusDismissed is get_groups_info's status of a dismissed group.
const GroupStatusDismissed = 2

// Error codes the client acts on.
const (
	// CodeArgs is ErrArgs, CodeNoPermission ErrNoPermission: permanent.
	CodeArgs         = 1001
	CodeNoPermission = 1002
	// CodeTokenExpired to CodeTokenNotExist are the token errors (1501 to
	// 1507): fetch a new token and retry.
	CodeTokenExpired  = 1501
	CodeTokenNotExist = 1507
)

// Limits of the client.
const (
	// MaxGroupsPerInfo is how many groups one get_groups_info call asks
	// for (OpenIM sets no maximum).
	MaxGroupsPerInfo = 50
	// DefaultMemberPage is the member page size.
	DefaultMemberPage = 200
)

// Client calls the OpenIM server's REST API.
type Client struct {
	// BaseURL is the openim-api address, for example
	// http://openim-api:10002.
	BaseURL string
	// Admin is the admin userID (one of imAdminUser.userIDs; give the
	// operator its own), Secret the server's share.yml secret.
	Admin, Secret string
	// HTTP is the HTTP client; its Timeout bounds each call.
	HTTP *http.Client
	// PageSize is the member page size.
	PageSize int
	// Retry is the retry policy of each call.
	Retry provider.Retry
	// Limit bounds calls per second (OpenIM has no quota; the client
	// limits itself anyway).
	Limit *rate.Limiter

	mu          sync.Mutex
	token       string
	tokenExpiry time.Time
	// TokensIssued counts the admin tokens fetched, for tests and metrics.
	TokensIssued int
}

// NewClient returns a client with the default limits and retry policy.
func NewClient(baseURL, admin, secret string) *Client {
	return &Client{
		BaseURL: baseURL, Admin: admin, Secret: secret,
		HTTP:     &http.Client{Timeout: 10 * time.Second},
		PageSize: DefaultMemberPage,
		Retry:    provider.DefaultRetry,
		Limit:    rate.NewLimiter(100, 10),
	}
}

var _ provider.RESTClient = (*Client)(nil)

// BatchSize implements provider.RESTClient.
func (c *Client) BatchSize() int { return MaxGroupsPerInfo }

// response is the envelope of every response.
type response struct {
	ErrCode int             `json:"errCode"`
	ErrMsg  string          `json:"errMsg"`
	ErrDlt  string          `json:"errDlt"`
	Data    json.RawMessage `json:"data"`
}

// adminToken returns the cached admin token, fetching one when there is
// none, it is near expiry, or after a token error (stale is the token that
// failed, so that concurrent callers fetch only one new token).
func (c *Client) adminToken(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.token != stale && time.Now().Before(c.tokenExpiry) {
		return c.token, nil
	}
	var data struct {
		Token             string `json:"token"`
		ExpireTimeSeconds int64  `json:"expireTimeSeconds"`
	}
	body := map[string]string{"secret": c.Secret, "userID": c.Admin}
	if err := c.post(ctx, PathGetAdminToken, "", body, &data); err != nil {
		return "", err
	}
	if data.Token == "" {
		return "", fmt.Errorf("%s: %w: no token", PathGetAdminToken, provider.ErrMalformed)
	}
	life := time.Duration(data.ExpireTimeSeconds) * time.Second
	c.token, c.tokenExpiry = data.Token, time.Now().Add(life-min(life/10, time.Hour))
	c.TokensIssued++
	return c.token, nil
}

// call POSTs one authenticated request, with retries, decoding data into
// out. A token error fetches a new token once.
func (c *Client) call(ctx context.Context, path string, in, out any) error {
	return c.Retry.Do(ctx, func() error {
		if err := c.Limit.Wait(ctx); err != nil {
			return err
		}
		token, err := c.adminToken(ctx, "")
		if err != nil {
			return err
		}
		err = c.post(ctx, path, token, in, out)
		var apiErr *provider.APIError
		if errors.As(err, &apiErr) && apiErr.Code >= CodeTokenExpired && apiErr.Code <= CodeTokenNotExist {
			if token, err = c.adminToken(ctx, token); err != nil {
				return err
			}
			err = c.post(ctx, path, token, in, out)
		}
		return err
	})
}

// post sends one request with a new operationID and checks the envelope.
func (c *Client) post(ctx context.Context, path, token string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(OperationIDHeader, newOperationID())
	if token != "" {
		req.Header.Set(TokenHeader, token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: reading the response: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return provider.StatusError(path, resp, time.Now())
	}
	var env response
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s: %w: %w", path, provider.ErrMalformed, err)
	}
	if env.ErrCode != 0 {
		permanent := env.ErrCode == CodeArgs || env.ErrCode == CodeNoPermission
		return &provider.APIError{API: path, Code: env.ErrCode, Message: env.ErrMsg, Retryable: !permanent}
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("%s: %w: data: %w", path, provider.ErrMalformed, err)
	}
	return nil
}

// newOperationID returns a unique operationID for one request.
func newOperationID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "resync-" + hex.EncodeToString(b)
}

// The request and response bodies.
type (
	groupInfo struct {
		GroupID     string `json:"groupID"`
		GroupName   string `json:"groupName"`
		OwnerUserID string `json:"ownerUserID"`
		MemberCount int    `json:"memberCount"`
		Status      int32  `json:"status"`
		GroupType   int32  `json:"groupType"`
	}
	pagination struct {
		PageNumber int `json:"pageNumber"`
		ShowNumber int `json:"showNumber"`
	}
	memberListData struct {
		Total   int `json:"total"`
		Members []struct {
			UserID    string `json:"userID"`
			RoleLevel int32  `json:"roleLevel"`
		} `json:"members"`
	}
)

// Snapshot implements provider.RESTClient: one get_groups_info call for
// the batch (a requested ID missing from the answer is a group that does
// not exist), then the member pages of every live group.
func (c *Client) Snapshot(ctx context.Context, groupIDs []string) ([]provider.GroupSnapshot, error) {
	if len(groupIDs) == 0 || len(groupIDs) > MaxGroupsPerInfo {
		return nil, fmt.Errorf("%d groups in one batch; want 1 to %d", len(groupIDs), MaxGroupsPerInfo)
	}
	var data struct {
		GroupInfos []groupInfo `json:"groupInfos"`
	}
	if err := c.call(ctx, PathGetGroupsInfo, map[string]any{"groupIDs": groupIDs}, &data); err != nil {
		return nil, err
	}
	byID := make(map[string]groupInfo, len(data.GroupInfos))
	for _, gi := range data.GroupInfos {
		byID[gi.GroupID] = gi
	}
	out := make([]provider.GroupSnapshot, len(groupIDs))
	for i, id := range groupIDs {
		snap := provider.GroupSnapshot{GroupID: id}
		gi, ok := byID[id]
		if !ok || gi.Status == GroupStatusDismissed {
			snap.Gone = true
			out[i] = snap
			continue
		}
		snap.Owner, snap.Name = gi.OwnerUserID, gi.GroupName
		if gi.GroupType == WorkingGroupType {
			snap.Type = "Work"
		}
		snap.Members, snap.MembersComplete, snap.Err = c.Members(ctx, id)
		out[i] = snap
	}
	return out, nil
}

// memberReadAttempts is how often a member list that changed while it was
// read is read again before the snapshot gives up on it.
const memberReadAttempts = 3

// Members reads a group's full member list, pages numbered from 1. The
// list is complete when every page reported the same total and the
// distinct members read add up to it; otherwise it is read again, up to
// memberReadAttempts times, and then returned as incomplete.
func (c *Client) Members(ctx context.Context, groupID string) ([]groupstate.Member, bool, error) {
	var ms []groupstate.Member
	for range memberReadAttempts {
		var complete bool
		var err error
		ms, complete, err = c.readMembers(ctx, groupID)
		if err != nil || complete {
			return ms, complete, err
		}
	}
	return ms, false, nil
}

func (c *Client) readMembers(ctx context.Context, groupID string) ([]groupstate.Member, bool, error) {
	size := max(c.PageSize, 1)
	var ms []groupstate.Member
	total, read := -1, 0
	consistent := true
	for page := 1; ; page++ {
		var data memberListData
		req := map[string]any{"groupID": groupID, "pagination": pagination{PageNumber: page, ShowNumber: size}}
		if err := c.call(ctx, PathGetGroupMemberList, req, &data); err != nil {
			return nil, false, err
		}
		if total >= 0 && data.Total != total {
			consistent = false
		}
		total = data.Total
		for _, m := range data.Members {
			if m.UserID != "" {
				ms = append(ms, groupstate.Member{UserID: m.UserID, Role: role(m.RoleLevel)})
			}
		}
		read += len(data.Members)
		if len(data.Members) < size || read >= total {
			break
		}
	}
	ms = groupstate.DedupeMembers(ms)
	return ms, consistent && len(ms) == total, nil
}

// Discover implements provider.RESTClient with /group/get_groups, paged.
func (c *Client) Discover(ctx context.Context) ([]string, error) {
	var ids []string
	for page := 1; ; page++ {
		var data struct {
			Total  int `json:"total"`
			Groups []struct {
				GroupInfo groupInfo `json:"groupInfo"`
			} `json:"groups"`
		}
		req := map[string]any{"pagination": pagination{PageNumber: page, ShowNumber: 500}}
		if err := c.call(ctx, PathGetGroups, req, &data); err != nil {
			return nil, err
		}
		for _, g := range data.Groups {
			ids = append(ids, g.GroupInfo.GroupID)
		}
		if len(data.Groups) < 500 || len(ids) >= data.Total {
			return ids, nil
		}
	}
}
