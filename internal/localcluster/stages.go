package localcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// kwokModule is the module whose source holds kwok's stage definitions.
const kwokModule = "sigs.k8s.io/kwok"

// kwokStagePatterns are the stages the local cluster needs, relative to
// kustomize/stage in kwok's module: nodes become Ready at once and keep
// heart-beating; pods become Ready at once, pods owned by a Job complete
// (which makes the Job succeed without a container runtime), and deleted
// pods go away (there is no kubelet to confirm the deletion).
var kwokStagePatterns = []string{
	"node/fast/node-initialize.yaml",
	"node/heartbeat/node-heartbeat.yaml",
	"pod/fast/*.yaml",
}

// kwokModuleDir returns the directory of the kwok module that
// hack/tools/kwok pins, downloading it through the module proxy if the
// module cache does not have it yet. Reading the stages from the module
// keeps them in step with the kwok binary built from the same go.mod.
func kwokModuleDir(ctx context.Context, toolsModDir string) (string, error) {
	dir, err := goListModuleDir(ctx, toolsModDir)
	if err == nil && dir != "" {
		return dir, nil
	}
	download := exec.CommandContext(ctx, "go", "mod", "download", kwokModule)
	download.Dir = toolsModDir
	if out, err := download.CombinedOutput(); err != nil {
		return "", fmt.Errorf("downloading %s in %s: %w: %s", kwokModule, toolsModDir, err, bytes.TrimSpace(out))
	}
	if dir, err = goListModuleDir(ctx, toolsModDir); err != nil {
		return "", err
	}
	if dir == "" {
		return "", fmt.Errorf("go list reports no directory for %s in %s", kwokModule, toolsModDir)
	}
	return dir, nil
}

func goListModuleDir(ctx context.Context, toolsModDir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", kwokModule)
	cmd.Dir = toolsModDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating %s with go list in %s: %w: %s", kwokModule, toolsModDir, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(string(out)), nil
}

// writeKwokStages joins the stage files below <moduleDir>/kustomize/stage
// into one multi-document YAML file at dst, the form kwok's --config takes.
func writeKwokStages(moduleDir, dst string) error {
	root := filepath.Join(moduleDir, "kustomize", "stage")
	var files []string
	for _, pattern := range kwokStagePatterns {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return fmt.Errorf("matching kwok stages %s: %w", pattern, err)
		}
		if len(matches) == 0 {
			return fmt.Errorf("no kwok stage matches %s in %s", pattern, root)
		}
		slices.Sort(matches)
		for _, m := range matches {
			// The directories' kustomization.yaml files are not stages.
			if filepath.Base(m) != "kustomization.yaml" {
				files = append(files, m)
			}
		}
	}
	var buf bytes.Buffer
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("reading kwok stage: %w", err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(bytes.TrimSpace(b))
		buf.WriteByte('\n')
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing kwok stages: %w", err)
	}
	return nil
}
