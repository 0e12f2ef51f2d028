// Package ociimage builds the operator's container image with no container
// engine: one layer holding the static manager binary on an empty (scratch)
// base. It writes the image as an OCI image layout, the release artifact
// whose manifest digest installers pin, and as a tarball that `docker load`
// and `kind load image-archive` accept. It can also push the layout's image
// to a registry and read a file back out of it.
//
// The image is reproducible: its bytes depend only on the binary and the
// Config. File times, owners and modes in the layer are fixed, the created
// time is given, and the binary is built with flags that make it depend
// only on the sources and the Go toolchain (see BuildBinary).
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// Entrypoint is where the manager binary sits in the image, and the
	// command config/manager/manager.yaml runs.
	Entrypoint = "/manager"
	// User is the numeric non-root user and group the manager runs as: the
	// image has no /etc/passwd to resolve a name.
	User = "65532:65532"
)

// The files BuildImage and Write produce, under the output directory.
const (
	// LayoutDir is the OCI image layout, the artifact releases pin.
	LayoutDir = "oci"
	// TarballFile is the `docker load` / `kind load image-archive` tarball.
	TarballFile = "image.tar"
	// DigestFile holds the manifest digest (sha256:...), for scripts.
	DigestFile = "digest"
)

// OCI annotation and label keys
// (https://github.com/opencontainers/image-spec/blob/main/annotations.md).
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelCreated  = "org.opencontainers.image.created"
	refNameKey    = "org.opencontainers.image.ref.name"
)

// Config describes the image around the binary.
type Config struct {
	// Arch is the GOARCH the binary was built for, e.g. amd64; the OS is
	// always linux.
	Arch string
	// Created is the image's creation time and the layer's file times. Use
	// the commit time (or SOURCE_DATE_EPOCH), never the current time.
	Created time.Time
	// Labels go into the image config and, as annotations, the manifest.
	Labels map[string]string
}

// BuildBinary compiles the manager (the main package at repoRoot) into out as
// a static Linux binary for goarch. -trimpath and -buildvcs=false keep the
// checkout's path and VCS state out of it, so the same sources and Go
// toolchain give the same bytes wherever they are built.
func BuildBinary(ctx context.Context, repoRoot, goarch, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the manager (GOOS=linux GOARCH=%s go build -o %s .): %w\n%s",
			goarch, out, err, bytes.TrimSpace(b))
	}
	return nil
}

// Image assembles the image from the binary at path.
func Image(binary string, cfg Config) (v1.Image, error) {
	if cfg.Arch == "" || cfg.Created.IsZero() {
		return nil, errors.New("the image config needs Arch and Created")
	}
	created := cfg.Created.UTC()
	layerTar, err := binaryLayer(binary, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.DefaultCompression),
		tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("making the layer: %w", err)
	}

	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "hack/image: the static manager binary at " + Entrypoint,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = cfg.Arch
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		User:       User,
		Entrypoint: []string{Entrypoint},
		WorkingDir: "/",
		Labels:     cfg.Labels,
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	annotated, ok := mutate.Annotations(img, cfg.Labels).(v1.Image)
	if !ok {
		return nil, errors.New("annotating the manifest did not return an image")
	}
	return annotated, nil
}

// binaryLayer returns an uncompressed tar with the binary at Entrypoint,
// owned by root, mode 0755, every time set to created.
func binaryLayer(binary string, created time.Time) ([]byte, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("reading the manager binary: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     Entrypoint[1:],
		Mode:     0o755,
		Size:     int64(len(data)),
		ModTime:  created,
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write replaces dir with the image as an OCI layout (dir/oci), a tarball
// (dir/image.tar) and its manifest digest (dir/digest), all naming the
// image ref. It returns the digest.
func Write(dir string, img v1.Image, ref string) (v1.Hash, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image name %q: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	layoutDir := filepath.Join(dir, LayoutDir)
	if err := os.RemoveAll(layoutDir); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing the OCI layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{refNameKey: ref})); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the OCI layout: %w", err)
	}
	if err := tarball.WriteToFile(filepath.Join(dir, TarballFile), tag, img); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the image tarball: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, DigestFile), []byte(digest.String()+"\n"), 0o644); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// FromLayout returns the one image in the OCI layout at dir.
func FromLayout(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("the OCI layout %s holds %d manifests, want 1", dir, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}

// ExtractFile copies the file at path (e.g. Entrypoint) out of img's layers
// to out, executable.
func ExtractFile(img v1.Image, path, out string) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	want := filepath.Clean(path)[1:]
	// The last layer that has the file wins, as in a container's filesystem.
	for i := len(layers) - 1; i >= 0; i-- {
		found, err := extractFromLayer(layers[i], want, out)
		if err != nil || found {
			return err
		}
	}
	return fmt.Errorf("%s is not in the image", path)
}

func extractFromLayer(layer v1.Layer, want, out string) (bool, error) {
	rc, err := layer.Uncompressed()
	if err != nil {
		return false, err
	}
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading a layer: %w", err)
		}
		if filepath.Clean(hdr.Name) != want || hdr.Typeflag != tar.TypeReg {
			continue
		}
		f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return false, err
		}
		if _, err := io.Copy(f, tr); err != nil {
			_ = f.Close()
			return false, err
		}
		return true, f.Close()
	}
}

// Push pushes img to ref and checks that the registry stores it under the
// same digest, so an installer pinned to the local digest pulls exactly
// this image.
func Push(ctx context.Context, img v1.Image, ref string, opts ...remote.Option) (v1.Hash, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image name %q: %w", ref, err)
	}
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	if err := remote.Write(tag, img, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	want, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	desc, err := remote.Head(tag, opts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("checking the pushed %s: %w", ref, err)
	}
	if desc.Digest != want {
		return v1.Hash{}, fmt.Errorf("the registry stores %s as %s, but the image is %s", ref, desc.Digest, want)
	}
	return want, nil
}
