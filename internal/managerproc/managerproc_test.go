package managerproc

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestFreeLoopbackAddr(t *testing.T) {
	g := NewWithT(t)
	addr, err := FreeLoopbackAddr()
	g.Expect(err).NotTo(HaveOccurred())
	host, _, err := net.SplitHostPort(addr)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(host).To(Equal("127.0.0.1"))
	g.Expect(CheckAddrFree(addr)).To(Succeed())
}

func TestCheckAddrFree_taken(t *testing.T) {
	g := NewWithT(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = l.Close() }()
	g.Expect(CheckAddrFree(l.Addr().String())).To(MatchError(ContainSubstring("is not free")))
}

func TestStart_exitsBeforeReady(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	// A "manager" that fails at once, as the real one does on a bad flag.
	binary := filepath.Join(dir, "manager")
	g.Expect(os.WriteFile(binary, []byte("#!/bin/sh\necho unknown flag >&2\nexit 2\n"), 0o755)).To(Succeed())
	probe, err := FreeLoopbackAddr()
	g.Expect(err).NotTo(HaveOccurred())

	_, err = Start(context.Background(), Options{
		Binary: binary, Kubeconfig: "none", CallbackAddr: "127.0.0.1:1", ProbeAddr: probe,
		LogPath: filepath.Join(dir, "manager.log"), ReadyTimeout: 10 * time.Second,
	})
	g.Expect(err).To(MatchError(And(ContainSubstring("exit status 2"), ContainSubstring("unknown flag"))))
}
