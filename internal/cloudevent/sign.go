package cloudevent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
)

// SignatureHeader carries the body's HMAC, as Flux notification-controller's
// generic-hmac Receiver reads it.
const SignatureHeader = "X-Signature"

// maxResponseBody bounds how much of a sink's reply is read: the SDK reads
// the whole body of a refusal, and a sink is not trusted.
const maxResponseBody = 64 << 10

// Sign returns the X-Signature value for a body: "sha256=" and the lower
// hex HMAC-SHA256 of the body keyed with the token.
func Sign(token, body []byte) string {
	mac := hmac.New(sha256.New, token)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

type tokenKey struct{}

// withToken makes the transport sign the request sent with ctx.
func withToken(ctx context.Context, token []byte) context.Context {
	if len(token) == 0 {
		return ctx
	}
	return context.WithValue(ctx, tokenKey{}, token)
}

// transport signs each request over the exact body bytes it sends (so the
// signature holds whatever the SDK's encoder wrote), and bounds the reply
// that is read.
type transport struct {
	base http.RoundTripper
}

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if token, ok := req.Context().Value(tokenKey{}).([]byte); ok {
		var body []byte
		if req.Body != nil {
			var err error
			body, err = io.ReadAll(req.Body)
			_ = req.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("reading the request body: %w", err)
			}
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
		req.Header.Set(SignatureHeader, Sign(token, body))
	}
	resp, err := t.base.RoundTrip(req)
	if resp != nil && resp.Body != nil {
		resp.Body = limitedBody{Reader: io.LimitReader(resp.Body, maxResponseBody), Closer: resp.Body}
	}
	return resp, err
}

type limitedBody struct {
	io.Reader
	io.Closer
}
