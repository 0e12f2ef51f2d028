package tencent

// UserSig (TLSSigAPIv2), the credential of Tencent's REST API, following
// the official library tencentyun/tls-sig-api-v2-golang v1.4.0 (MIT): the
// same fields, field order, zlib framing and base64 alphabet, so the same
// inputs give the same string.

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// userSigEncoding is base64 with +, / and = replaced by *, - and _.
var userSigEncoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-").WithPadding('_')

// userSigDoc is the signed JSON document, fields in the library's order.
type userSigDoc struct {
	Version    string `json:"TLS.ver"`
	Identifier string `json:"TLS.identifier"`
	SDKAppID   uint64 `json:"TLS.sdkappid"`
	Expire     int64  `json:"TLS.expire"`
	Time       int64  `json:"TLS.time"`
	Sig        string `json:"TLS.sig"`
}

func (d *userSigDoc) sign(key string) string {
	s := "TLS.identifier:" + d.Identifier + "\n" +
		"TLS.sdkappid:" + strconv.FormatUint(d.SDKAppID, 10) + "\n" +
		"TLS.time:" + strconv.FormatInt(d.Time, 10) + "\n" +
		"TLS.expire:" + strconv.FormatInt(d.Expire, 10) + "\n"
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// GenUserSig returns a UserSig for identifier in application appID, signed
// with the console's secret key, issued at now and valid for expire.
func GenUserSig(appID uint64, key, identifier string, now time.Time, expire time.Duration) (string, error) {
	doc := userSigDoc{Version: "2.0", Identifier: identifier, SDKAppID: appID,
		Expire: int64(expire / time.Second), Time: now.Unix()}
	doc.Sig = doc.sign(key)
	var b bytes.Buffer
	w, err := zlib.NewWriterLevel(&b, zlib.NoCompression)
	if err != nil {
		return "", err
	}
	if err := json.NewEncoder(w).Encode(doc); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return userSigEncoding.EncodeToString(b.Bytes()), nil
}

// UserSig errors, as the REST API reports them.
var (
	// ErrUserSigExpired is error 70001.
	ErrUserSigExpired = errors.New("UserSig expired")
	// ErrUserSigInvalid is error 70003.
	ErrUserSigInvalid = errors.New("UserSig invalid")
)

// VerifyUserSig checks a UserSig as the REST API does: its encoding,
// signature, application, identifier and expiry. It returns
// ErrUserSigExpired or an error wrapping ErrUserSigInvalid.
func VerifyUserSig(appID uint64, key, identifier, sig string, now time.Time) error {
	raw, err := userSigEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUserSigInvalid, err)
	}
	r, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUserSigInvalid, err)
	}
	body, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUserSigInvalid, err)
	}
	var doc userSigDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("%w: %w", ErrUserSigInvalid, err)
	}
	switch {
	case !hmac.Equal([]byte(doc.Sig), []byte(doc.sign(key))):
		return fmt.Errorf("%w: signature mismatch", ErrUserSigInvalid)
	case doc.SDKAppID != appID:
		return fmt.Errorf("%w: issued for another SDKAppID", ErrUserSigInvalid)
	case doc.Identifier != identifier:
		return fmt.Errorf("%w: issued for another identifier", ErrUserSigInvalid)
	case now.Unix() > doc.Time+doc.Expire:
		return ErrUserSigExpired
	}
	return nil
}
