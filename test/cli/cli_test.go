// Package cli checks that every command under hack/ starts: the quick start
// runs them with `go run`, and a library that registers a flag on the
// global flag set makes them panic before main (flag redefined).
package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"chatgroup.dev/chatgroup-operator/internal/testsupport"
)

// thirdPartyGlobalFlags are the flags that imported third-party packages
// register on flag.CommandLine. controller-runtime's config package adds
// --kubeconfig in its init; the manager (main.go) uses it, and the hack/
// commands use flag sets of their own, so it cannot collide with theirs.
var thirdPartyGlobalFlags = []string{"kubeconfig"}

// TestCommands_helpExitsZero builds each hack/ command and runs it with -h
// and --help: each prints its usage and exits 0, without a panic.
func TestCommands_helpExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every command")
	}
	root := testsupport.RepoRoot()
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./hack/...")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./hack/...: %v\n%s", err, out)
	}
	commands, err := os.ReadDir(bin)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range commands {
		names = append(names, c.Name())
	}
	for _, want := range []string{"bench", "loadgen", "run-local", "send-callback"} {
		if !slices.Contains(names, want) {
			t.Errorf("go build ./hack/... made no %s; made %v", want, names)
		}
	}
	for _, name := range names {
		for _, arg := range []string{"-h", "--help"} {
			t.Run(name+" "+arg, func(t *testing.T) {
				out, err := exec.Command(filepath.Join(bin, name), arg).CombinedOutput()
				if err != nil {
					t.Errorf("%s %s: %v, want exit status 0:\n%s", name, arg, err, out)
				}
				if bytes.Contains(out, []byte("panic:")) || bytes.Contains(out, []byte("goroutine ")) {
					t.Errorf("%s %s printed a panic or a stack trace:\n%s", name, arg, out)
				}
				if !bytes.HasPrefix(out, []byte("Usage: ")) || !bytes.Contains(out, []byte("\nFlags:\n")) {
					t.Errorf("%s %s did not print its usage:\n%s", name, arg, out)
				}
			})
		}
	}
}

// TestLibraries_registerNoGlobalFlags compiles a program that imports every
// library package of the module and lists the flags on flag.CommandLine:
// only third-party packages' flags may be there, none of ours.
func TestLibraries_registerNoGlobalFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a program that imports every package")
	}
	root := testsupport.RepoRoot()
	list := exec.Command("go", "list", "-f", `{{if and (ne .Name "main") .GoFiles}}{{.ImportPath}}{{end}}`, "./...")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var src strings.Builder
	src.WriteString("package main\n\nimport (\n\t\"flag\"\n\t\"fmt\"\n")
	pkgs := strings.Fields(string(out))
	for _, p := range pkgs {
		src.WriteString("\t_ \"" + p + "\"\n")
	}
	src.WriteString(")\n\nfunc main() { flag.VisitAll(func(f *flag.Flag) { fmt.Println(f.Name) }) }\n")
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %v", pkgs)
	}

	// The program must sit inside the module to import internal packages;
	// bin/ is git-ignored.
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(filepath.Join(root, "bin"), "flagprobe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run := exec.Command("go", "run", ".")
	run.Dir = dir
	flags, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("running the probe: %v\n%s", err, flags)
	}
	for _, name := range strings.Fields(string(flags)) {
		if !slices.Contains(thirdPartyGlobalFlags, name) {
			t.Errorf("a package of this module, or a new dependency, registers the global flag --%s; "+
				"bind flags to a FlagSet the command passes in instead", name)
		}
	}
}
