package tencent

import (
	"encoding/json"

	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// Reply renders {"ActionStatus","ErrorInfo","ErrorCode"}, the response
// every Tencent "after" callback page documents.
func (Provider) Reply(o provider.Outcome) []byte {
	status := "OK"
	if !o.OK {
		status = "FAIL"
	}
	b, _ := json.Marshal(struct {
		ActionStatus string
		ErrorInfo    string
		ErrorCode    int
	}{status, o.Message, o.Code})
	return b
}
