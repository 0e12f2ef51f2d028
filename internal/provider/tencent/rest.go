package tencent

// The REST client the resync loop reads groups with: get_group_info,
// get_group_member_info and get_appid_group_list, authenticated with a
// cached UserSig of the app admin account.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/groupstate"
	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// REST API names, the path segments after /v4/group_open_http_svc/.
const (
	APIGetGroupInfo       = "get_group_info"
	APIGetGroupMemberInfo = "get_group_member_info"
	APIGetAppIDGroupList  = "get_appid_group_list"
)

// Error codes of the REST API the client acts on.
const (
	// CodeGroupNotFound is "group does not exist, or was disbanded".
	CodeGroupNotFound = 10010
	// CodeInvalidGroupID is "invalid group ID": the group is gone too, as
	// far as the mirror can tell.
	CodeInvalidGroupID = 10015
	// CodeInternal is an internal error: retry.
	CodeInternal = 10002
	// CodeUserSigExpired means: regenerate the UserSig and retry.
	CodeUserSigExpired = 70001
)

// Limits of the REST API.
const (
	// MaxGroupsPerInfo is the most groups get_group_info takes.
	MaxGroupsPerInfo = 50
	// MaxMemberPage is the largest get_group_member_info page.
	MaxMemberPage = 200
	// DefaultMemberPage is the page size the docs recommend.
	DefaultMemberPage = 100
	// groupListPage is the get_appid_group_list page size.
	groupListPage = 10000
)

// permanentCodes are errors retrying cannot fix: bad parameters, missing
// permission and UserSig problems other than expiry.
var permanentCodes = map[int]bool{10003: true, 10004: true, 10007: true, 70003: true, 70009: true, 70013: true, 70014: true}

// Client calls Tencent Cloud Chat's REST API.
type Client struct {
	// BaseURL is the region's API address, for example
	// https://adminapisgp.im.qcloud.com.
	BaseURL string
	// AppID is the SDKAppID; Admin an App admin account; Key the console's
	// secret key for UserSig.
	AppID uint64
	Admin string
	Key   string
	// HTTP is the HTTP client; its Timeout bounds each call.
	HTTP *http.Client
	// PageSize is the member page size (at most MaxMemberPage).
	PageSize int
	// Retry is the retry policy of each call.
	Retry provider.Retry
	// Limit bounds calls per second to each API (Tencent: 200/s);
	// ListLimit bounds get_appid_group_list (1/s).
	Limit, ListLimit *rate.Limiter
	// Now is the clock UserSigs are issued by (time.Now when nil).
	Now func() time.Time

	mu        sync.Mutex
	sig       string
	sigExpiry time.Time
}

// userSigLifetime is how long a generated UserSig is valid; it is renewed
// an hour before it expires.
const userSigLifetime = 24 * time.Hour

// NewClient returns a client with the default limits and retry policy.
func NewClient(baseURL string, appID uint64, admin, key string) *Client {
	return &Client{
		BaseURL: baseURL, AppID: appID, Admin: admin, Key: key,
		HTTP:      &http.Client{Timeout: 10 * time.Second},
		PageSize:  DefaultMemberPage,
		Retry:     provider.DefaultRetry,
		Limit:     rate.NewLimiter(200, 20),
		ListLimit: rate.NewLimiter(1, 1),
	}
}

var _ provider.RESTClient = (*Client)(nil)

// BatchSize implements provider.RESTClient.
func (c *Client) BatchSize() int { return MaxGroupsPerInfo }

// userSig returns the cached UserSig, generating one when there is none,
// it is near expiry, or renew is set (after error 70001).
func (c *Client) userSig(renew bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	if renew || c.sig == "" || now.After(c.sigExpiry) {
		sig, err := GenUserSig(c.AppID, c.Key, c.Admin, now, userSigLifetime)
		if err != nil {
			return "", err
		}
		c.sig, c.sigExpiry = sig, now.Add(userSigLifetime-time.Hour)
	}
	return c.sig, nil
}

// envelope is the part of every response the client checks.
type envelope struct {
	ActionStatus string `json:"ActionStatus"`
	ErrorCode    int    `json:"ErrorCode"`
	ErrorInfo    string `json:"ErrorInfo"`
}

// responder is a response body: the envelope and the API's own fields.
type responder interface{ header() *envelope }

func (e *envelope) header() *envelope { return e }

// call POSTs one request, with retries, and decodes the response into out.
func (c *Client) call(ctx context.Context, api string, limiter *rate.Limiter, in any, out responder) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	renewed := false
	return c.Retry.Do(ctx, func() error {
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				return err
			}
		}
		err := c.post(ctx, api, body, out, renewed)
		var apiErr *provider.APIError
		if errors.As(err, &apiErr) && apiErr.Code == CodeUserSigExpired && !renewed {
			renewed = true
			err = c.post(ctx, api, body, out, true)
		}
		return err
	})
}

// post sends one request and checks the envelope.
func (c *Client) post(ctx context.Context, api string, body []byte, out responder, renewSig bool) error {
	sig, err := c.userSig(renewSig)
	if err != nil {
		return err
	}
	q := url.Values{}
	q.Set("sdkappid", strconv.FormatUint(c.AppID, 10))
	q.Set("identifier", c.Admin)
	q.Set("usersig", sig)
	q.Set("random", strconv.FormatUint(uint64(rand.Uint32()), 10))
	q.Set("contenttype", "json")
	u := c.BaseURL + "/v4/group_open_http_svc/" + api + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", api, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: reading the response: %w", api, err)
	}
	if resp.StatusCode != http.StatusOK {
		return provider.StatusError(api, resp, time.Now())
	}
	*out.header() = envelope{}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: %w: %w", api, provider.ErrMalformed, err)
	}
	return checkEnvelope(api, out.header())
}

func checkEnvelope(api string, env *envelope) error {
	switch {
	case env.ActionStatus == "OK" && env.ErrorCode == 0:
		return nil
	case env.ActionStatus != "OK" && env.ActionStatus != "FAIL":
		return fmt.Errorf("%s: %w: ActionStatus %q", api, provider.ErrMalformed, env.ActionStatus)
	}
	return &provider.APIError{API: api, Code: env.ErrorCode, Message: env.ErrorInfo, Retryable: !permanentCodes[env.ErrorCode]}
}

// The request and response bodies.
type (
	groupInfoRequest struct {
		GroupIDList    []string       `json:"GroupIdList"`
		ResponseFilter responseFilter `json:"ResponseFilter"`
	}
	responseFilter struct {
		GroupBaseInfoFilter []string `json:"GroupBaseInfoFilter"`
	}
	groupInfoResponse struct {
		envelope
		GroupInfo []groupInfo `json:"GroupInfo"`
	}
	groupInfo struct {
		GroupID   string `json:"GroupId"`
		ErrorCode int    `json:"ErrorCode"`
		ErrorInfo string `json:"ErrorInfo"`
		Type      string `json:"Type"`
		Name      string `json:"Name"`
		Owner     string `json:"Owner_Account"`
		MemberNum int    `json:"MemberNum"`
	}
	memberRequest struct {
		GroupID          string   `json:"GroupId"`
		Limit            int      `json:"Limit"`
		Offset           *int     `json:"Offset,omitempty"`
		Next             *string  `json:"Next,omitempty"`
		MemberInfoFilter []string `json:"MemberInfoFilter"`
	}
	memberResponse struct {
		envelope
		MemberNum  int          `json:"MemberNum"`
		MemberList []memberInfo `json:"MemberList"`
		Next       string       `json:"Next"`
	}
	memberInfo struct {
		MemberAccount string `json:"Member_Account"`
		Role          string `json:"Role"`
	}
	groupListRequest struct {
		Limit int `json:"Limit"`
		Next  int `json:"Next"`
	}
	groupListResponse struct {
		envelope
		TotalCount  int `json:"TotalCount"`
		Next        int `json:"Next"`
		GroupIDList []struct {
			GroupID string `json:"GroupId"`
		} `json:"GroupIdList"`
	}
)

// Snapshot implements provider.RESTClient: one get_group_info call for the
// batch, then the member pages of every group that exists.
func (c *Client) Snapshot(ctx context.Context, groupIDs []string) ([]provider.GroupSnapshot, error) {
	if len(groupIDs) > MaxGroupsPerInfo {
		return nil, fmt.Errorf("%d groups in one batch; at most %d", len(groupIDs), MaxGroupsPerInfo)
	}
	var resp groupInfoResponse
	req := groupInfoRequest{GroupIDList: groupIDs,
		ResponseFilter: responseFilter{GroupBaseInfoFilter: []string{"Type", "Name", "Owner_Account", "MemberNum"}}}
	if err := c.call(ctx, APIGetGroupInfo, c.Limit, req, &resp); err != nil {
		return nil, err
	}
	byID := make(map[string]groupInfo, len(resp.GroupInfo))
	for _, gi := range resp.GroupInfo {
		byID[gi.GroupID] = gi
	}
	out := make([]provider.GroupSnapshot, len(groupIDs))
	for i, id := range groupIDs {
		out[i] = c.snapshotGroup(ctx, id, byID)
	}
	return out, nil
}

// snapshotGroup turns one element of get_group_info into a snapshot and
// reads the group's members.
func (c *Client) snapshotGroup(ctx context.Context, id string, byID map[string]groupInfo) provider.GroupSnapshot {
	snap := provider.GroupSnapshot{GroupID: id}
	gi, ok := byID[id]
	switch {
	case !ok:
		snap.Err = fmt.Errorf("%s: no element for group %q in the response", APIGetGroupInfo, id)
		return snap
	case gi.ErrorCode == CodeGroupNotFound || gi.ErrorCode == CodeInvalidGroupID:
		snap.Gone = true
		return snap
	case gi.ErrorCode != 0:
		snap.Err = &provider.APIError{API: APIGetGroupInfo, Code: gi.ErrorCode, Message: gi.ErrorInfo, Retryable: true}
		return snap
	}
	snap.Owner, snap.Name, snap.Type = gi.Owner, gi.Name, groupType(gi.Type)
	if gi.Type == "AVChatRoom" {
		// get_group_member_info does not support audio-video groups.
		return snap
	}
	snap.Members, snap.MembersComplete, snap.Err = c.Members(ctx, id, gi.Type == "Community")
	return snap
}

// memberReadAttempts is how often a member list that changed while it was
// read is read again before the snapshot gives up on it.
const memberReadAttempts = 3

// Members reads a group's full member list. The list is complete when
// every page reported the same member count and the distinct members read
// add up to it; a list that shifted while it was read is read again, up to
// memberReadAttempts times, and otherwise returned as incomplete.
func (c *Client) Members(ctx context.Context, groupID string, community bool) ([]groupstate.Member, bool, error) {
	var ms []groupstate.Member
	for range memberReadAttempts {
		var complete bool
		var err error
		ms, complete, err = c.readMembers(ctx, groupID, community)
		if err != nil || complete {
			return ms, complete, err
		}
	}
	return ms, false, nil
}

// readMembers reads every page once.
func (c *Client) readMembers(ctx context.Context, groupID string, community bool) ([]groupstate.Member, bool, error) {
	pageSize := min(max(c.PageSize, 1), MaxMemberPage)
	var ms []groupstate.Member
	total, offset, next := -1, 0, ""
	consistent := true
	for {
		req := memberRequest{GroupID: groupID, Limit: pageSize, MemberInfoFilter: []string{"Role"}}
		if community {
			req.Next = &next
		} else {
			req.Offset = &offset
		}
		var resp memberResponse
		if err := c.call(ctx, APIGetGroupMemberInfo, c.Limit, req, &resp); err != nil {
			return nil, false, err
		}
		if total >= 0 && resp.MemberNum != total {
			consistent = false
		}
		total = resp.MemberNum
		for _, m := range resp.MemberList {
			if m.MemberAccount != "" {
				ms = append(ms, groupstate.Member{UserID: m.MemberAccount, Role: memberRole(m.Role)})
			}
		}
		offset += len(resp.MemberList)
		next = resp.Next
		if (community && next == "") || (!community && (len(resp.MemberList) < pageSize || offset >= total)) {
			break
		}
	}
	ms = groupstate.DedupeMembers(ms)
	return ms, consistent && len(ms) == total, nil
}

// memberRole maps Tencent's Role to a member role.
func memberRole(r string) imv1.MemberRole {
	switch r {
	case "Owner":
		return imv1.RoleOwner
	case "Admin":
		return imv1.RoleAdmin
	}
	return imv1.RoleMember
}

// Discover implements provider.RESTClient with get_appid_group_list, paged
// and limited to one call a second.
func (c *Client) Discover(ctx context.Context) ([]string, error) {
	var ids []string
	next := 0
	for {
		var resp groupListResponse
		req := groupListRequest{Limit: groupListPage, Next: next}
		if err := c.call(ctx, APIGetAppIDGroupList, c.ListLimit, req, &resp); err != nil {
			return nil, err
		}
		for _, g := range resp.GroupIDList {
			ids = append(ids, g.GroupID)
		}
		if resp.Next == 0 {
			return ids, nil
		}
		next = resp.Next
	}
}
