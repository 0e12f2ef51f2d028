package tencenttest

import (
	"os"
	"path/filepath"
	"runtime"
)

// Sample returns a documented request body from the tencent package's
// testdata, by file name without .json: create, join, exit, destroy, info,
// owner or memberfield. It reads the source tree, so it is for tests; it
// panics when the file is missing.
func Sample(name string) []byte {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "testdata", name+".json"))
	if err != nil {
		panic(err)
	}
	return b
}
