package localcluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ModulePath is this repository's Go module.
const ModulePath = "chatgroup.dev/chatgroup-operator"

// FindRepoRoot walks up from the working directory to the directory whose
// go.mod declares ModulePath. Walking up (rather than using the source file's
// location) keeps working for binaries built with -trimpath and for tests,
// which run in their package's directory.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getting the working directory: %w", err)
	}
	for {
		ok, err := declaresModule(filepath.Join(dir, "go.mod"), ModulePath)
		if err != nil {
			return "", err
		}
		if ok {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod for module %s in the working directory or above: run from inside the repository", ModulePath)
		}
		dir = parent
	}
}

// declaresModule reports whether the go.mod at path declares module mod. A
// missing file is not an error: the caller keeps walking up.
func declaresModule(path, mod string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == mod, nil
		}
	}
	return false, s.Err()
}
