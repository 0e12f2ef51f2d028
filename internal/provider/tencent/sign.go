package tencent

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"chatgroup.dev/chatgroup-operator/internal/provider"
)

// Sign is Tencent's callback signature: the lower-case hex SHA-256 of the
// token followed directly by RequestTime (Unix seconds). It is not an HMAC.
func Sign(token, requestTime string) string {
	sum := sha256.Sum256([]byte(token + requestTime))
	return hex.EncodeToString(sum[:])
}

// Authenticate checks SdkAppid against the receiver's appID, and Sign
// against each token with RequestTime within window of now. The replay ID
// is the Sign: it covers only the token and the second, so the server
// pairs it with the event's content.
func (Provider) Authenticate(r *http.Request, creds provider.Credentials, now time.Time, window time.Duration) (provider.Auth, error) {
	q := r.URL.Query()
	if q.Get(appIDParam) != creds.AppID {
		return provider.Auth{}, provider.Forbidden(fmt.Errorf("SdkAppid %q does not match the receiver's appID", q.Get(appIDParam)))
	}
	sign := q.Get(signParam)
	idx, err := verify(creds.Tokens, sign, q.Get(requestTimeParam), now, window)
	if err != nil {
		return provider.Auth{}, provider.Unauthorized(err)
	}
	return provider.Auth{Token: idx, ReplayID: sign}, nil
}

// verify checks sign against each token (current first) in constant time,
// and requestTime against the window around now. It returns the index of
// the token that matched.
func verify(tokens []string, sign, requestTime string, now time.Time, window time.Duration) (int, error) {
	if sign == "" || requestTime == "" {
		return -1, errors.New("missing Sign or RequestTime")
	}
	secs, err := strconv.ParseInt(requestTime, 10, 64)
	if err != nil {
		return -1, fmt.Errorf("RequestTime %q is not a Unix time in seconds", requestTime)
	}
	if skew := now.Sub(time.Unix(secs, 0)); skew > window || skew < -window {
		return -1, fmt.Errorf("RequestTime is %s away from the server clock (allowed %s)", skew.Round(time.Second), window)
	}
	matched := -1
	for i, token := range tokens {
		// Check every token so the time taken does not say which matched.
		if subtle.ConstantTimeCompare([]byte(Sign(token, requestTime)), []byte(sign)) == 1 && matched < 0 {
			matched = i
		}
	}
	if matched < 0 {
		return -1, errors.New("signature mismatch")
	}
	return matched, nil
}
