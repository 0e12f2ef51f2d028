// Command image builds the operator's container image with no container
// engine, reproducibly: it compiles the manager as a static Linux binary,
// puts it alone on a scratch base (user 65532, entrypoint /manager, OCI
// labels), and writes an OCI image layout, a tarball for `docker load` or
// `kind load image-archive`, and the manifest digest under --out. With
// --push it then pushes the image to --ref, using the registry credentials
// of `docker login` or `crane auth login` if there are any.
//
//	make image                                    # bin/image/{oci,image.tar,digest}
//	make push REGISTRY=registry.example.com/team  # the same image, pushed
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"chatgroup.dev/chatgroup-operator/internal/cli"
	"chatgroup.dev/chatgroup-operator/internal/ociimage"
)

type options struct {
	out, ref, arch, source, version, revision string
	created                                   int64
	push                                      bool
}

func main() {
	cli.SetUpLogging(os.Stderr, false)
	var o options
	fs := cli.NewFlagSet("image", "make image | make push, or go run ./hack/image --ref NAME:TAG [flags]")
	fs.StringVar(&o.out, "out", filepath.Join("bin", "image"), "Directory for the OCI layout (oci/), the tarball (image.tar), the digest file and the binary.")
	fs.StringVar(&o.ref, "ref", "", "Image name and tag, e.g. registry.example.com/team/chatgroup-operator:v0.1.0 (required).")
	fs.StringVar(&o.arch, "arch", runtime.GOARCH, "Target architecture (GOARCH); the OS is linux.")
	fs.Int64Var(&o.created, "created", 0, "Creation time in Unix seconds, also the layer's file times: the commit time, for reproducible builds (default: $SOURCE_DATE_EPOCH, else 0).")
	fs.StringVar(&o.source, "source", "", "The org.opencontainers.image.source label: the source repository's URL.")
	fs.StringVar(&o.version, "version", "", "The org.opencontainers.image.version label (default: the --ref tag).")
	fs.StringVar(&o.revision, "revision", "", "The org.opencontainers.image.revision label: the source commit.")
	fs.BoolVar(&o.push, "push", false, "Push the image to --ref after building it, and check the registry's digest.")
	cli.Parse(fs)
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

// complete checks the options and fills in the defaults that depend on
// others or on the environment.
func (o *options) complete() error {
	if o.ref == "" {
		return fmt.Errorf("--ref is required")
	}
	if o.created == 0 {
		if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
			var err error
			if o.created, err = strconv.ParseInt(epoch, 10, 64); err != nil {
				return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", epoch, err)
			}
		}
	}
	if o.version == "" {
		o.version = o.ref[strings.LastIndex(o.ref, ":")+1:]
	}
	return nil
}

func run(o options) error {
	if err := o.complete(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	binary := filepath.Join(o.out, "manager")
	if err := ociimage.BuildBinary(ctx, ".", o.arch, binary); err != nil {
		return err
	}
	labels := map[string]string{
		ociimage.LabelVersion: o.version,
		ociimage.LabelCreated: time.Unix(o.created, 0).UTC().Format(time.RFC3339),
	}
	if o.source != "" {
		labels[ociimage.LabelSource] = o.source
	}
	if o.revision != "" {
		labels[ociimage.LabelRevision] = o.revision
	}
	img, err := ociimage.Image(binary, ociimage.Config{Arch: o.arch, Created: time.Unix(o.created, 0), Labels: labels})
	if err != nil {
		return err
	}
	digest, err := ociimage.Write(o.out, img, o.ref)
	if err != nil {
		return err
	}
	fmt.Printf("Built %s (linux/%s) in %.1fs\n  digest  %s\n  layout  %s\n  tarball %s\n",
		o.ref, o.arch, time.Since(start).Seconds(), digest,
		filepath.Join(o.out, ociimage.LayoutDir), filepath.Join(o.out, ociimage.TarballFile))
	if !o.push {
		return nil
	}
	// Push what was written, read back from the layout: the release artifact.
	img, err = ociimage.FromLayout(filepath.Join(o.out, ociimage.LayoutDir))
	if err != nil {
		return err
	}
	if _, err := ociimage.Push(ctx, img, o.ref, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return err
	}
	fmt.Printf("Pushed %s@%s\n", o.ref, digest)
	return nil
}
