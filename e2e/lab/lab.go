// Package lab builds throwaway network labs for hook6's end-to-end tests:
// network namespaces joined by veth pairs, the real hook6d and hook6ctl
// binaries, and drivers for the Debian DHCPv6 clients (dhclient, dhcpcd),
// relay (dhcrelay), load generator (perfdhcp) and reference server (Kea)
// that the tests run against hook6. Everything a lab creates is removed in
// the test's cleanup, also when the test fails.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Lab is one test's set of namespaces, links and processes.
type Lab struct {
	t   testing.TB
	id  string
	dir string
	nns int
	seq int
}

// New returns an empty lab for t. It fails the test when not run as root,
// since namespaces and veth pairs need CAP_NET_ADMIN.
func New(t testing.TB) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("lab: network namespaces need root; run the e2e tests as root (make test does)")
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("lab: random id: %v", err)
	}
	return &Lab{t: t, id: hex.EncodeToString(b[:]), dir: t.TempDir()}
}

// T returns the test the lab belongs to.
func (l *Lab) T() testing.TB { return l.t }

// Path returns the path of name inside the lab's private directory.
func (l *Lab) Path(name string) string { return filepath.Join(l.dir, name) }

// MkdirTemp makes a fresh directory inside the lab's directory.
func (l *Lab) MkdirTemp(prefix string) string {
	l.t.Helper()
	d, err := os.MkdirTemp(l.dir, prefix)
	if err != nil {
		l.t.Fatalf("lab: %v", err)
	}
	return d
}

// unique returns base with a sequence number, for names of files and
// processes that must not collide within the lab.
func (l *Lab) unique(base string) string {
	l.seq++
	return fmt.Sprintf("%s-%d", base, l.seq)
}

// shortDir makes a directory with a short path (unix socket paths are
// limited to 108 bytes; test temp dirs can be longer), removed in the
// test's cleanup.
func (l *Lab) shortDir() string {
	l.t.Helper()
	d, err := os.MkdirTemp("", "h6-")
	if err != nil {
		l.t.Fatalf("lab: %v", err)
	}
	l.t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// WriteFile writes a file in the lab's directory and returns its path.
func (l *Lab) WriteFile(name string, data []byte, mode os.FileMode) string {
	l.t.Helper()
	p := l.Path(name)
	if err := os.WriteFile(p, data, mode); err != nil {
		l.t.Fatalf("lab: write %s: %v", p, err)
	}
	return p
}

// Namespace creates a network namespace with its loopback up and duplicate
// address detection off (so link-local addresses are usable at once), and
// deletes it in the test's cleanup after killing whatever still runs in it.
func (l *Lab) Namespace(role string) *Netns {
	l.t.Helper()
	l.nns++
	name := fmt.Sprintf("h6-%s-%d%s", l.id, l.nns, role)
	if len(name) > 40 {
		name = name[:40]
	}
	if out, err := run(context.Background(), "ip", "netns", "add", name); err != nil {
		l.t.Fatalf("lab: create namespace %s: %v: %s", name, err, out)
	}
	n := &Netns{Name: name, lab: l}
	l.t.Cleanup(n.destroy)
	sysctls := []string{
		"net.ipv6.conf.all.accept_dad=0",
		"net.ipv6.conf.default.accept_dad=0",
		"net.ipv6.conf.all.accept_ra=0",
		"net.ipv6.conf.default.accept_ra=0",
		"net.ipv6.conf.default.router_solicitations=0",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := n.Run(ctx, "sysctl", append([]string{"-qw"}, sysctls...)...); err != nil {
		l.t.Fatalf("lab: sysctl in %s: %v: %s", name, err, out)
	}
	n.ip(ctx, "link", "set", "lo", "up")
	return n
}

// Link joins a and b with a veth pair named aIf on a's side and bIf on b's
// side, and brings both ends up. Deleting either namespace removes the pair.
func (l *Lab) Link(a *Netns, aIf string, b *Netns, bIf string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := run(ctx, "ip", "link", "add", aIf, "netns", a.Name, "type", "veth", "peer", "name", bIf, "netns", b.Name); err != nil {
		l.t.Fatalf("lab: veth %s/%s <-> %s/%s: %v: %s", a.Name, aIf, b.Name, bIf, err, out)
	}
	a.ip(ctx, "link", "set", aIf, "up")
	b.ip(ctx, "link", "set", bIf, "up")
}

// run runs a command in the current namespace and returns its combined output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// RequireTools reports the commands in names that are not on PATH, so a
// TestMain can fail early with one clear message.
func RequireTools(names ...string) error {
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tools %s (make deps installs them)", strings.Join(missing, ", "))
	}
	return nil
}
