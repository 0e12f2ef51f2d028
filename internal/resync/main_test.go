package resync_test

import (
	"testing"

	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

// env is the control plane the integration tests share; nil in -short
// mode.
var env *testsupport.Env

func TestMain(m *testing.M) { testsupport.RunMain(m, &env) }
