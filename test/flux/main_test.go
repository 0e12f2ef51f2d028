//go:build flux

package flux

import (
	"os"
	"testing"

	"chatgroup.dev/chatgroup-operator/internal/cli"
)

// TestMain gives controller-runtime a logger before any test uses it:
// errors only, without stack traces.
func TestMain(m *testing.M) {
	cli.SetUpLogging(os.Stderr, false)
	os.Exit(m.Run())
}
