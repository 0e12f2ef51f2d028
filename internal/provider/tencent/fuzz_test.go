package tencent

import (
	"testing"

	"chatgroup.dev/chatgroup-operator/internal/provider/providercheck"
)

// FuzzDecode checks the decoder contract on arbitrary input: no panic,
// only ErrUnknownCommand or a *DecodeError as errors, and every accepted
// event within the bounds the ChatGroup API can store. The seed corpus is
// committed under testdata/fuzz; run longer with `make fuzz`.
func FuzzDecode(f *testing.F) {
	for cmd, name := range samples {
		f.Add(cmd, sample(f, name))
	}
	f.Fuzz(func(t *testing.T, command string, body []byte) {
		providercheck.Decode(t, Provider{}, command, body)
	})
}

// FuzzDecodeReduce runs decoded events through the reducer (security
// audit I1); see providercheck.Reduce.
func FuzzDecodeReduce(f *testing.F) {
	for cmd, name := range samples {
		f.Add(cmd, sample(f, name))
	}
	f.Fuzz(func(t *testing.T, command string, body []byte) {
		providercheck.Reduce(t, Provider{}, command, body)
	})
}
