package resync_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"chatgroup.dev/chatgroup-operator/internal/cli"
	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

// env is the control plane the integration tests share; nil in -short
// mode.
var env *testsupport.Env

func TestMain(m *testing.M) {
	flag.Parse()
	cli.SetUpLogging(os.Stderr, testing.Verbose())
	if testing.Short() {
		os.Exit(m.Run())
	}
	var err error
	if env, err = testsupport.New(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping control plane:", err)
	}
	os.Exit(code)
}
