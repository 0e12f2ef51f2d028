package openimtest

// FakeServer is a loopback fake of the subset of the OpenIM server's REST
// API (v3.8) that resync uses, with its documented request and response
// shapes: the operationID header (errCode 1001 without it), admin tokens
// from /auth/get_admin_token checked on every other call (one live token
// per admin: a new token demotes the previous ones, which stay valid for
// DemotedGrace and then fail with 1507), get_groups_info (a dismissed
// group has status 2; an unknown ID is left out), get_group_member_list
// (1-based pages) and get_groups.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/provider/openim"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
)

// FakeServer serves the REST API from a Truth.
type FakeServer struct {
	// Truth is the state the test controls.
	Truth *restfake.Truth
	// Secret is the share.yml secret; Admins the imAdminUser.userIDs.
	Secret string
	Admins []string
	// DemotedGrace is how long a token stays valid after a newer one was
	// issued for the same admin (OpenIM: 5 minutes).
	DemotedGrace time.Duration
	// URL is the server's base URL.
	URL string
	srv *restfake.Server

	mu      sync.Mutex
	current map[string]string    // admin -> live token
	demoted map[string]time.Time // token -> end of validity
	issued  int
}

// NewFakeServer starts a fake on 127.0.0.1; Close stops it.
func NewFakeServer(secret string, admins ...string) *FakeServer {
	f := &FakeServer{Truth: restfake.NewTruth(), Secret: secret, Admins: admins, DemotedGrace: 5 * time.Minute,
		current: map[string]string{}, demoted: map[string]time.Time{}}
	f.srv = restfake.Serve(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	return f
}

// Close stops the server.
func (f *FakeServer) Close() { f.srv.Close() }

// TokensIssued counts the admin tokens issued.
func (f *FakeServer) TokensIssued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued
}

// apiReply writes the response envelope; OpenIM answers errors with HTTP
// 200 too.
func apiReply(w http.ResponseWriter, code int, msg string, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"errCode": code, "errMsg": msg, "errDlt": "", "data": data})
}

func (f *FakeServer) serve(w http.ResponseWriter, r *http.Request) {
	if f.Truth.ServeControl(w, r) {
		return
	}
	if r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	f.Truth.Count(r.URL.Path)
	if f.fault(w, r) {
		return
	}
	if r.Header.Get(openim.OperationIDHeader) == "" {
		apiReply(w, openim.CodeArgs, "ArgsError", "header must have operationID")
		return
	}
	if r.URL.Path == openim.PathGetAdminToken {
		f.getAdminToken(w, r)
		return
	}
	if code, msg := f.checkToken(r.Header.Get(openim.TokenHeader)); code != 0 {
		apiReply(w, code, msg, nil)
		return
	}
	switch r.URL.Path {
	case openim.PathGetGroupsInfo:
		f.groupsInfo(w, r)
	case openim.PathGetGroupMemberList:
		f.memberList(w, r)
	case openim.PathGetGroups:
		f.groups(w, r)
	default:
		http.NotFound(w, r)
	}
}

// fault serves the next injected fault, if any.
func (f *FakeServer) fault(w http.ResponseWriter, r *http.Request) bool {
	fault, ok := f.Truth.NextFault()
	if !ok {
		return false
	}
	if restfake.WriteFault(w, r, fault, f.srv.Done()) {
		return true
	}
	switch fault {
	case restfake.FaultMalformed:
		_, _ = w.Write([]byte(`{"errCode":0,"data":{`))
	case restfake.FaultUnknownCode:
		apiReply(w, 99999, "something unexpected", nil)
	}
	return true
}

func (f *FakeServer) getAdminToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Secret string `json:"secret"`
		UserID string `json:"userID"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiReply(w, openim.CodeArgs, "ArgsError", nil)
		return
	}
	if req.Secret != f.Secret {
		apiReply(w, openim.CodeNoPermission, "NoPermissionError", nil)
		return
	}
	if !slices.Contains(f.Admins, req.UserID) {
		apiReply(w, openim.CodeArgs, "ArgsError: not an admin user", nil)
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	f.mu.Lock()
	if old, ok := f.current[req.UserID]; ok {
		f.demoted[old] = time.Now().Add(f.DemotedGrace)
	}
	f.current[req.UserID] = token
	f.issued++
	f.mu.Unlock()
	apiReply(w, 0, "", map[string]any{"token": token, "expireTimeSeconds": 90 * 86400})
}

// checkToken accepts a live token or a demoted one inside its grace.
func (f *FakeServer) checkToken(token string) (int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if token == "" {
		return 1503, "TokenMalformedError"
	}
	for _, t := range f.current {
		if t == token {
			return 0, ""
		}
	}
	if end, ok := f.demoted[token]; ok && time.Now().Before(end) {
		return 0, ""
	}
	return openim.CodeTokenNotExist, "TokenNotExistError"
}

func (f *FakeServer) groupsInfo(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GroupIDs []string `json:"groupIDs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.GroupIDs) == 0 {
		apiReply(w, openim.CodeArgs, "ArgsError: groupIDs is empty", nil)
		return
	}
	infos := []map[string]any{}
	for _, id := range req.GroupIDs {
		if g, ok := f.Truth.Get(id); ok {
			infos = append(infos, groupInfo(id, g))
		}
	}
	apiReply(w, 0, "", map[string]any{"groupInfos": infos})
}

// groupInfo renders a sdkws.GroupInfo.
func groupInfo(id string, g restfake.Group) map[string]any {
	status := 0
	if g.Gone {
		status = openim.GroupStatusDismissed
	}
	return map[string]any{"groupID": id, "groupName": g.Name, "ownerUserID": g.Owner, "memberCount": len(g.Members),
		"status": status, "groupType": openim.WorkingGroupType, "createTime": 1700000000000}
}

func (f *FakeServer) memberList(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GroupID    string `json:"groupID"`
		Pagination struct {
			PageNumber int `json:"pageNumber"`
			ShowNumber int `json:"showNumber"`
		} `json:"pagination"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Pagination.PageNumber < 1 || req.Pagination.ShowNumber < 1 {
		apiReply(w, openim.CodeArgs, "ArgsError: pageNumber and showNumber must be at least 1", nil)
		return
	}
	n := req.Pagination.ShowNumber
	users, roles, total, ok := f.Truth.MemberPage(req.GroupID, (req.Pagination.PageNumber-1)*n, n)
	if !ok {
		apiReply(w, 1201, "GroupIDNotFoundError", nil)
		return
	}
	members := make([]map[string]any, len(users))
	for i, u := range users {
		members[i] = map[string]any{"groupID": req.GroupID, "userID": u, "roleLevel": roleLevel(roles[u]), "joinTime": 1700000000000}
	}
	apiReply(w, 0, "", map[string]any{"total": total, "members": members})
}

func roleLevel(r imv1.MemberRole) int {
	switch r {
	case imv1.RoleOwner:
		return openim.RoleLevelOwner
	case imv1.RoleAdmin:
		return openim.RoleLevelAdmin
	}
	return openim.RoleLevelMember
}

func (f *FakeServer) groups(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Pagination struct {
			PageNumber int `json:"pageNumber"`
			ShowNumber int `json:"showNumber"`
		} `json:"pagination"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Pagination.PageNumber < 1 || req.Pagination.ShowNumber < 1 {
		apiReply(w, openim.CodeArgs, "ArgsError", nil)
		return
	}
	ids := f.Truth.IDs()
	start := min((req.Pagination.PageNumber-1)*req.Pagination.ShowNumber, len(ids))
	end := min(start+req.Pagination.ShowNumber, len(ids))
	groups := []map[string]any{}
	for _, id := range ids[start:end] {
		g, _ := f.Truth.Get(id)
		groups = append(groups, map[string]any{"groupInfo": groupInfo(id, g), "groupOwnerUserID": g.Owner})
	}
	apiReply(w, 0, "", map[string]any{"total": len(ids), "groups": groups})
}

// SetGroup puts a live group with members into the truth; the owner gets
// the Owner role.
func (f *FakeServer) SetGroup(groupID, name, owner string, members ...string) {
	f.Truth.Update(groupID, func(g *restfake.Group) {
		g.Name, g.Owner, g.Gone = name, owner, false
		g.Members = map[string]imv1.MemberRole{}
		for _, m := range members {
			g.Members[m] = imv1.RoleMember
		}
		if owner != "" {
			g.Members[owner] = imv1.RoleOwner
		}
	})
}
