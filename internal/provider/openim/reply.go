package openim

import (
	"encoding/json"

	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// Reply renders {"actionCode","errCode","errMsg","errDlt","nextCode"},
// OpenIM's CommonCallbackResp. nextCode stays 0: "after" callbacks cannot
// be refused.
func (Provider) Reply(o provider.Outcome) []byte {
	actionCode := 0
	if !o.OK {
		actionCode = 1
	}
	b, _ := json.Marshal(struct {
		ActionCode int    `json:"actionCode"`
		ErrCode    int    `json:"errCode"`
		ErrMsg     string `json:"errMsg"`
		ErrDlt     string `json:"errDlt"`
		NextCode   int    `json:"nextCode"`
	}{actionCode, o.Code, o.Message, o.Detail, 0})
	return b
}
