package ociimage_test

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"chatgroup.dev/chatgroup-operator/internal/ociimage"
)

const ref = "chatgroup-operator:v0.0.0-test"

var created = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func config() ociimage.Config {
	return ociimage.Config{Arch: "amd64", Created: created, Labels: map[string]string{
		ociimage.LabelVersion:  "v0.0.0-test",
		ociimage.LabelRevision: "0123456789abcdef0123456789abcdef01234567",
		ociimage.LabelSource:   "https://chatgroup.dev/chatgroup-operator",
	}}
}

// fakeBinary writes a small file standing in for the manager.
func fakeBinary(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "manager")
	NewWithT(t).Expect(os.WriteFile(path, []byte("#!/not/really/a/binary\n"), 0o700)).To(Succeed())
	return path
}

func TestImage_shape(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	img, err := ociimage.Image(fakeBinary(t, dir), config())
	g.Expect(err).NotTo(HaveOccurred())

	cfg, err := img.ConfigFile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.OS).To(Equal("linux"))
	g.Expect(cfg.Architecture).To(Equal("amd64"))
	g.Expect(cfg.Created.Time.Equal(created)).To(BeTrue(), "created %s", cfg.Created)
	g.Expect(cfg.Config.User).To(Equal("65532:65532"), "numeric non-root: the image has no /etc/passwd")
	g.Expect(cfg.Config.Entrypoint).To(Equal([]string{"/manager"}))
	g.Expect(cfg.Config.Labels).To(Equal(config().Labels))
	manifest, err := img.Manifest()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(manifest.Annotations).To(Equal(config().Labels))
	g.Expect(string(manifest.MediaType)).To(Equal("application/vnd.oci.image.manifest.v1+json"))

	// One layer, one file: the binary, root-owned, 0755, at the fixed time.
	layers, err := img.Layers()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(layers).To(HaveLen(1))
	rc, err := layers[0].Uncompressed()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hdr.Name).To(Equal("manager"))
	g.Expect(hdr.Mode).To(Equal(int64(0o755)))
	g.Expect([]int{hdr.Uid, hdr.Gid}).To(Equal([]int{0, 0}))
	g.Expect(hdr.ModTime.Equal(created)).To(BeTrue(), "mtime %s", hdr.ModTime)
	_, err = tr.Next()
	g.Expect(errors.Is(err, io.EOF)).To(BeTrue(), "only the binary is in the layer")
}

func TestWrite_layoutAndTarball(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	bin := fakeBinary(t, dir)
	img, err := ociimage.Image(bin, config())
	g.Expect(err).NotTo(HaveOccurred())
	digest, err := ociimage.Write(dir, img, ref)
	g.Expect(err).NotTo(HaveOccurred())

	file, err := os.ReadFile(filepath.Join(dir, ociimage.DigestFile))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.TrimSpace(string(file))).To(Equal(digest.String()))

	// The layout holds exactly this image, and the binary comes back out.
	fromLayout, err := ociimage.FromLayout(filepath.Join(dir, ociimage.LayoutDir))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fromLayout.Digest()).To(Equal(digest))
	g.Expect(validate.Image(fromLayout)).To(Succeed())
	out := filepath.Join(dir, "extracted")
	g.Expect(ociimage.ExtractFile(fromLayout, ociimage.Entrypoint, out)).To(Succeed())
	g.Expect(os.ReadFile(out)).To(Equal(mustRead(t, bin)))
	info, err := os.Stat(out)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o755)))
	g.Expect(ociimage.ExtractFile(fromLayout, "/etc/passwd", out)).To(MatchError(ContainSubstring("not in the image")))

	// Writing again replaces the layout rather than adding a second image.
	_, err = ociimage.Write(dir, img, ref)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = ociimage.FromLayout(filepath.Join(dir, ociimage.LayoutDir))
	g.Expect(err).NotTo(HaveOccurred())

	// The tarball is what `docker load` reads: tagged, with the same config
	// and layer (Docker recomputes the manifest, so only those compare).
	tag, err := name.NewTag(ref)
	g.Expect(err).NotTo(HaveOccurred())
	fromTar, err := tarball.ImageFromPath(filepath.Join(dir, ociimage.TarballFile), &tag)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(validate.Image(fromTar)).To(Succeed())
	g.Expect(fromTar.ConfigName()).To(Equal(must(img.ConfigName())))
}

// TestImage_reproducible builds the real manager twice, into different
// directories and with different file times, and expects the same image
// digest and the same tarball bytes: the same commit gives the same image.
func TestImage_reproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the manager image twice")
	}
	g := NewWithT(t)
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")

	var digests, tarballs, binaries []string
	for i := range 2 {
		dir := t.TempDir()
		bin := filepath.Join(dir, "manager")
		g.Expect(ociimage.BuildBinary(t.Context(), root, runtime.GOARCH, bin)).To(Succeed())
		// The file's own times must not leak into the image.
		stamp := time.Now().Add(time.Duration(i) * time.Hour)
		g.Expect(os.Chtimes(bin, stamp, stamp)).To(Succeed())
		cfg := config()
		cfg.Arch = runtime.GOARCH
		img, err := ociimage.Image(bin, cfg)
		g.Expect(err).NotTo(HaveOccurred())
		digest, err := ociimage.Write(dir, img, ref)
		g.Expect(err).NotTo(HaveOccurred())
		digests = append(digests, digest.String())
		tarballs = append(tarballs, sha(t, filepath.Join(dir, ociimage.TarballFile)))
		binaries = append(binaries, sha(t, bin))
	}
	g.Expect(binaries[1]).To(Equal(binaries[0]), "the manager binary")
	g.Expect(digests[1]).To(Equal(digests[0]), "the image digest")
	g.Expect(tarballs[1]).To(Equal(tarballs[0]), "the image tarball")
	t.Logf("Both builds: %s", digests[0])
}

func TestPush_keepsTheDigest(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	img, err := ociimage.Image(fakeBinary(t, t.TempDir()), config())
	g.Expect(err).NotTo(HaveOccurred())

	target := strings.TrimPrefix(srv.URL, "http://") + "/team/chatgroup-operator:v0.0.0-test"
	digest, err := ociimage.Push(t.Context(), img, target)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(digest).To(Equal(must(img.Digest())))

	pulled, err := remote.Image(must(name.ParseReference(target + "@" + digest.String())))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pulled.Digest()).To(Equal(digest))
	g.Expect(validate.Image(pulled)).To(Succeed())
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return b
}

func sha(t *testing.T, path string) string {
	t.Helper()
	sum := sha256.Sum256(mustRead(t, path))
	return string(sum[:])
}
