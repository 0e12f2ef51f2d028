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

// A manager's probe address must differ from its callback address, which
// was chosen earlier and is not listened on yet: the kernel may hand the
// same free port out twice (it did, and an e2e run failed with "address
// already in use").
func TestFreeLoopbackAddr_avoidsAddressesAlreadyChosen(t *testing.T) {
	g := NewWithT(t)
	for range 200 {
		first, err := FreeLoopbackAddr()
		g.Expect(err).NotTo(HaveOccurred())
		second, err := FreeLoopbackAddr(first)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(second).NotTo(Equal(first))
	}
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
