package tencenttest

// FakeServer is a loopback fake of the subset of Tencent Cloud Chat's REST
// API that resync uses, with the documented request and response shapes:
// the query parameters, UserSig check (errors 70001, 70003), the envelope
// and the per-group ErrorCode of get_group_info (10010 for a group that
// does not exist or was disbanded).

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
	"chatgroup.dev/chatgroup-operator/internal/provider/tencent"
)

// Response field names used more than once.
const (
	fErrorCode = "ErrorCode"
	fGroupID   = "GroupId"
	fErrorInfo = "ErrorInfo"
)

// FakeServer serves the REST API from a Truth.
type FakeServer struct {
	// Truth is the state the test controls.
	Truth *restfake.Truth
	// AppID, Admin and Key are what UserSigs are checked against.
	AppID uint64
	Admin string
	Key   string
	// URL is the server's base URL.
	URL string
	srv *restfake.Server
}

// NewFakeServer starts a fake on 127.0.0.1; Close stops it.
func NewFakeServer(appID uint64, admin, key string) *FakeServer {
	f := &FakeServer{Truth: restfake.NewTruth(), AppID: appID, Admin: admin, Key: key}
	f.srv = restfake.Serve(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	return f
}

// Close stops the server.
func (f *FakeServer) Close() { f.srv.Close() }

// restReply writes a JSON body with the envelope.
func restReply(w http.ResponseWriter, code int, info string, fields map[string]any) {
	body := map[string]any{"ActionStatus": "OK", fErrorCode: code, fErrorInfo: info, "RequestId": "Id-fake"}
	if code != 0 {
		body["ActionStatus"] = "FAIL"
	}
	for k, v := range fields {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (f *FakeServer) serve(w http.ResponseWriter, r *http.Request) {
	if f.Truth.ServeControl(w, r) {
		return
	}
	api, ok := strings.CutPrefix(r.URL.Path, "/v4/group_open_http_svc/")
	if r.Method != http.MethodPost || !ok {
		http.NotFound(w, r)
		return
	}
	f.Truth.Count(api)
	if f.fault(w, r) {
		return
	}
	if code, info := f.authenticate(r); code != 0 {
		restReply(w, code, info, nil)
		return
	}
	switch api {
	case tencent.APIGetGroupInfo:
		f.groupInfo(w, r)
	case tencent.APIGetGroupMemberInfo:
		f.memberInfo(w, r)
	case tencent.APIGetAppIDGroupList:
		f.groupList(w, r)
	default:
		restReply(w, 10003, "invalid command", nil)
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
		_, _ = w.Write([]byte(`{"ActionStatus":"OK","GroupInfo":[`))
	case restfake.FaultUnknownCode:
		restReply(w, 99999, "something unexpected", nil)
	}
	return true
}

// authenticate checks the query parameters and the UserSig as the REST
// API does; it returns an error code and text, or 0.
func (f *FakeServer) authenticate(r *http.Request) (int, string) {
	q := r.URL.Query()
	if q.Get("contenttype") != "json" || q.Get("random") == "" {
		return 10004, "missing contenttype or random"
	}
	if q.Get("sdkappid") != strconv.FormatUint(f.AppID, 10) {
		return 70014, "sdkappid mismatch"
	}
	if q.Get("identifier") != f.Admin {
		return 70013, "identifier is not the app admin"
	}
	switch err := tencent.VerifyUserSig(f.AppID, f.Key, f.Admin, q.Get("usersig"), time.Now()); {
	case errors.Is(err, tencent.ErrUserSigExpired):
		return 70001, "usersig expired"
	case err != nil:
		return 70003, "usersig invalid"
	}
	return 0, ""
}

func decodeRequest(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		restReply(w, 10004, "invalid json: "+err.Error(), nil)
		return false
	}
	return true
}

func (f *FakeServer) groupInfo(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GroupIDList []string `json:"GroupIdList"`
	}
	if !decodeRequest(w, r, &req) {
		return
	}
	if len(req.GroupIDList) == 0 || len(req.GroupIDList) > tencent.MaxGroupsPerInfo {
		restReply(w, 10004, "GroupIdList must hold 1 to 50 groups", nil)
		return
	}
	infos := make([]map[string]any, 0, len(req.GroupIDList))
	for _, id := range req.GroupIDList {
		g, ok := f.Truth.Get(id)
		if !ok || g.Gone {
			infos = append(infos, map[string]any{fGroupID: id, fErrorCode: tencent.CodeGroupNotFound,
				fErrorInfo: "this group does not exist"})
			continue
		}
		if g.ErrorCode != 0 {
			infos = append(infos, map[string]any{fGroupID: id, fErrorCode: g.ErrorCode, fErrorInfo: "injected error"})
			continue
		}
		infos = append(infos, map[string]any{fGroupID: id, fErrorCode: 0, fErrorInfo: "",
			"Type": g.Type, "Name": g.Name, "Owner_Account": g.Owner, "MemberNum": len(g.Members)})
	}
	restReply(w, 0, "", map[string]any{"GroupInfo": infos})
}

func (f *FakeServer) memberInfo(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GroupID string  `json:"GroupId"`
		Limit   int     `json:"Limit"`
		Offset  int     `json:"Offset"`
		Next    *string `json:"Next"`
	}
	if !decodeRequest(w, r, &req) {
		return
	}
	if req.Limit < 1 || req.Limit > tencent.MaxMemberPage {
		restReply(w, 10004, "Limit must be 1 to 200", nil)
		return
	}
	first := req.Offset
	if req.Next != nil && *req.Next != "" {
		first, _ = strconv.Atoi(*req.Next)
	}
	users, roles, total, ok := f.Truth.MemberPage(req.GroupID, first, req.Limit)
	if !ok {
		restReply(w, tencent.CodeGroupNotFound, "this group does not exist", nil)
		return
	}
	list := make([]map[string]any, len(users))
	for i, u := range users {
		list[i] = map[string]any{"Member_Account": u, "Role": string(roles[u]), "JoinTime": 1700000000, "MsgSeq": 1}
	}
	fields := map[string]any{"MemberNum": total, "MemberList": list}
	if g, _ := f.Truth.Get(req.GroupID); g.Type == "Community" {
		next := ""
		if first+len(users) < total {
			next = strconv.Itoa(first + len(users))
		}
		fields["Next"] = next
	}
	restReply(w, 0, "", fields)
}

func (f *FakeServer) groupList(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Limit int `json:"Limit"`
		Next  int `json:"Next"`
	}
	if !decodeRequest(w, r, &req) {
		return
	}
	ids := f.Truth.IDs()
	limit := req.Limit
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	start := min(req.Next, len(ids))
	end := min(start+limit, len(ids))
	list := make([]map[string]string, 0, end-start)
	for _, id := range ids[start:end] {
		list = append(list, map[string]string{fGroupID: id})
	}
	next := 0
	if end < len(ids) {
		next = end
	}
	restReply(w, 0, "", map[string]any{"TotalCount": len(ids), "Next": next, "GroupIdList": list})
}

// SetGroup puts a live group with members into the truth; the owner gets
// the Owner role.
func (f *FakeServer) SetGroup(groupID, groupType, name, owner string, members ...string) {
	f.Truth.Update(groupID, func(g *restfake.Group) {
		g.Type, g.Name, g.Owner, g.Gone = groupType, name, owner, false
		g.Members = map[string]imv1.MemberRole{}
		for _, m := range members {
			g.Members[m] = imv1.RoleMember
		}
		if owner != "" {
			g.Members[owner] = imv1.RoleOwner
		}
	})
}
