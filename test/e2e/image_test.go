//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"chatgroup.dev/chatgroup-operator/internal/managerproc"
	"chatgroup.dev/chatgroup-operator/internal/ociimage"
)

// managerFromImage builds the image with `make image`, as a user would,
// and returns the manager binary extracted from the image's layer: the
// tests run the very artifact the image ships. On other systems than Linux
// the image's binary cannot run, and the manager is built for the host.
func managerFromImage(t *testing.T, root, stateDir string) string {
	t.Helper()
	g := NewWithT(t)
	binary := filepath.Join(stateDir, "manager")
	if runtime.GOOS != "linux" {
		t.Logf("Running a host build of the manager: the image's Linux binary cannot run on %s", runtime.GOOS)
		g.Expect(managerproc.Build(t.Context(), root, binary)).To(Succeed())
		return binary
	}
	imageDir := filepath.Join(stateDir, "image")
	out, err := makeImage(t.Context(), root, imageDir)
	g.Expect(err).NotTo(HaveOccurred(), "make image:\n%s", out)

	img, err := ociimage.FromLayout(filepath.Join(imageDir, ociimage.LayoutDir))
	g.Expect(err).NotTo(HaveOccurred())
	digest, err := img.Digest()
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err := img.ConfigFile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.Config.User).To(Equal(ociimage.User))
	g.Expect(cfg.Config.Entrypoint).To(Equal([]string{ociimage.Entrypoint}))
	g.Expect(cfg.Architecture).To(Equal(runtime.GOARCH))

	g.Expect(os.Remove(binary)).To(Or(Succeed(), MatchError(os.ErrNotExist)))
	g.Expect(ociimage.ExtractFile(img, ociimage.Entrypoint, binary)).To(Succeed())
	t.Logf("Manager taken from the image %s (%s)", digest, cfg.Config.Labels[ociimage.LabelRevision])
	return binary
}

// makeImage runs `make image` into dir.
func makeImage(ctx context.Context, root, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "image", "IMAGE_DIR="+dir)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(b)), err
}
