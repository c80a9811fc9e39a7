//go:build labbench

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hook6/hook6/bench/labbench"
	"github.com/hook6/hook6/e2e/lab"
)

// server starts one setup under test with an empty lease database.
type server interface {
	// start starts it in e's server namespace; profile, when not empty, is
	// where hook6d writes a CPU profile of its run.
	start(e *env, profile string) (running, error)
}

// running is a started server.
type running interface {
	cpu() (time.Duration, error) // CPU time the server process used so far
	peerCPU() time.Duration      // the failover partner's; 0 without one
	stop()
}

// keaServer is kea-dhcp6, multi-threaded, memfile with persistence.
type keaServer struct{ threads, queue int }

type keaRunning struct {
	k   *labbench.Kea
	pid int
}

func (s keaServer) start(e *env, _ string) (running, error) {
	k, err := labbench.StartKea(e.l, e.srv, pools.KeaConfig(s.threads, s.queue))
	if err != nil {
		return nil, err
	}
	pid, err := labbench.ServerPID(k.Proc)
	if err != nil {
		k.Proc.Stop()
		return nil, err
	}
	return keaRunning{k: k, pid: pid}, nil
}

func (r keaRunning) cpu() (time.Duration, error) { return labbench.CPUTime(r.pid) }
func (r keaRunning) peerCPU() time.Duration      { return 0 }
func (r keaRunning) stop()                       { r.k.Proc.Stop() }

// hook6Server is hook6d with cfg.
type hook6Server struct {
	bins lab.Binaries
	cfg  lab.Config
}

type hook6Running struct {
	d   *lab.Hook6d
	pid int
}

func (s hook6Server) start(e *env, profile string) (running, error) {
	return startHook6d(e.l, e.srv, s.bins, s.cfg, profile)
}

// startHook6d starts hook6d with a fresh state directory; with profile
// set, hook6d writes its CPU profile there when stopped.
func startHook6d(l *lab.Lab, ns *lab.Netns, bins lab.Binaries, cfg lab.Config, profile string) (hook6Running, error) {
	if profile != "" {
		os.Setenv("HOOK6_CPUPROFILE", profile)
		defer os.Unsetenv("HOOK6_CPUPROFILE")
	}
	d := l.StartHook6d(ns, bins, cfg)
	pid, err := labbench.ServerPID(d.Process())
	if err != nil {
		d.Stop()
		return hook6Running{}, err
	}
	return hook6Running{d: d, pid: pid}, nil
}

func (r hook6Running) cpu() (time.Duration, error) { return labbench.CPUTime(r.pid) }
func (r hook6Running) peerCPU() time.Duration      { return 0 }
func (r hook6Running) stop()                       { r.d.Stop() }

// scriptsConfig is hook6 with bench/scripts/fourpoints.go attached at
// four points every Solicit and Request passes.
func scriptsConfig(repo string) lab.Config {
	cfg := pools.Hook6Config()
	cfg.Extensions = []lab.Extension{{
		Name:   "fourpoints",
		Script: filepath.Join(repo, "bench", "scripts", "fourpoints.go"),
		Points: []string{"post-packet-decode", "pre-client-lookup", "post-client-lookup", "pre-packet-encode"},
	}}
	return cfg
}

// failoverServer is a primary serving perfdhcp with its secondary in a
// third namespace, in normal state before the step starts; every commit
// is replicated to the secondary (RFC 8156 binding updates).
type failoverServer struct {
	bins             lab.Binaries
	peer             *lab.Netns
	primary, partner lab.Config
}

var (
	foPrimary = netip.MustParsePrefix("2001:db8:f::1/64")
	foPartner = netip.MustParsePrefix("2001:db8:f::2/64")
)

// newFailoverServer adds the partner's namespace to e and checks that this
// build of hook6d takes a failover section.
func newFailoverServer(e *env, bins lab.Binaries) (*failoverServer, error) {
	peer := e.l.Namespace("peer")
	e.l.Link(e.srv, foIf, peer, peerIf)
	e.srv.AddAddr(foIf, foPrimary)
	peer.AddAddr(peerIf, foPartner)
	fs := &failoverServer{bins: bins, peer: peer, primary: pools.Hook6Config(), partner: pools.Hook6Config()}
	side := func(role string, local, peer netip.Prefix) map[string]any {
		return map[string]any{
			"role": role, "name": "bench",
			"local": netip.AddrPortFrom(local.Addr(), 647).String(),
			"peer":  netip.AddrPortFrom(peer.Addr(), 647).String(),
			"tls":   map[string]any{"insecure": true},
		}
	}
	fs.primary.Failover = side("primary", foPrimary, foPartner)
	// The partner serves no interface of its own: it only keeps the
	// replicated bindings, as a standby would in a one-link lab.
	fs.partner.Server.Interfaces = nil
	fs.partner.Links = []lab.Link{{Name: "lan"}}
	fs.partner.Failover = side("secondary", foPartner, foPrimary)
	for _, c := range []lab.Config{fs.primary, fs.partner} {
		if err := checkConfig(e.l, bins, c); err != nil {
			return nil, fmt.Errorf("this hook6d does not take the failover section: %w", err)
		}
	}
	return fs, nil
}

// checkConfig runs hook6d -t on cfg.
func checkConfig(l *lab.Lab, bins lab.Binaries, cfg lab.Config) error {
	cfg.Server.StateDir = l.MkdirTemp("check-")
	y, err := cfg.YAML()
	if err != nil {
		return err
	}
	path := filepath.Join(cfg.Server.StateDir, "hook6d.yaml")
	if err := os.WriteFile(path, y, 0o644); err != nil {
		return err
	}
	out, err := exec.Command(bins.Hook6d, "-t", "-c", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("hook6d -t: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

type failoverRunning struct {
	primary, partner hook6Running
}

func (s *failoverServer) start(e *env, profile string) (running, error) {
	partner, err := startHook6d(e.l, s.peer, s.bins, s.partner, "")
	if err != nil {
		return nil, err
	}
	primary, err := startHook6d(e.l, e.srv, s.bins, s.primary, profile)
	if err != nil {
		partner.stop()
		return nil, err
	}
	r := failoverRunning{primary: primary, partner: partner}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitFailoverNormal(ctx, primary.d); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// waitFailoverNormal polls `hook6ctl failover status -o json` until the
// server and its partner are both in normal state.
func waitFailoverNormal(ctx context.Context, d *lab.Hook6d) error {
	var last string
	for {
		out, err := d.Ctl().Run(ctx, "failover", "status", "-o", "json")
		if err == nil {
			var st struct {
				State        string `json:"state"`
				PartnerState string `json:"partner-state"`
			}
			if err := json.Unmarshal(out, &st); err != nil {
				return fmt.Errorf("failover status %q: %w", out, err)
			}
			if st.State == "normal" && st.PartnerState == "normal" {
				return nil
			}
			last = st.State + "/" + st.PartnerState
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failover pair not in normal state (last: %s): %w", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r failoverRunning) cpu() (time.Duration, error) { return r.primary.cpu() }

func (r failoverRunning) peerCPU() time.Duration {
	c, _ := r.partner.cpu()
	return c
}

func (r failoverRunning) stop() {
	r.primary.stop()
	r.partner.stop()
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func cmdOutput(name string, args ...string) string { return cmdOutputIn("", name, args...) }

func cmdOutputIn(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(%s: %v)", name, err)
	}
	return strings.TrimSpace(string(out))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// keaHAServer is Kea's hot-standby pair (libdhcp_ha): the primary serves
// perfdhcp, the standby in a third namespace; the primary sends every
// lease update to the standby and waits for its answer before replying.
type keaHAServer struct {
	peer           *lab.Netns
	threads, queue int
}

const keaHAHooks = "/usr/lib/x86_64-linux-gnu/kea/hooks"

func newKeaHAServer(e *env, threads, queue int) (*keaHAServer, error) {
	if _, err := os.Stat(filepath.Join(keaHAHooks, "libdhcp_ha.so")); err != nil {
		return nil, fmt.Errorf("kea HA hook library: %w", err)
	}
	peer := e.l.Namespace("peer")
	e.l.Link(e.srv, foIf, peer, peerIf)
	e.srv.AddAddr(foIf, foPrimary)
	peer.AddAddr(peerIf, foPartner)
	return &keaHAServer{peer: peer, threads: threads, queue: queue}, nil
}

func (s *keaHAServer) config(this, iface string) labbench.KeaConfig {
	c := pools.KeaConfig(s.threads, s.queue)
	c.Interface = iface
	url := func(p netip.Prefix) string { return "http://" + netip.AddrPortFrom(p.Addr(), 8001).String() + "/" }
	c.HA = &labbench.KeaHA{ThisServer: this, PrimaryURL: url(foPrimary), StandbyURL: url(foPartner),
		HooksDir: keaHAHooks, ListenerThreads: s.threads}
	return c
}

type keaHARunning struct {
	primary, standby keaRunning
}

func (s *keaHAServer) start(e *env, _ string) (running, error) {
	sk, err := labbench.StartKea(e.l, s.peer, s.config("standby", peerIf))
	if err != nil {
		return nil, err
	}
	pk, err := labbench.StartKea(e.l, e.srv, s.config("primary", srvIf))
	if err != nil {
		sk.Proc.Stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := pk.Proc.WaitOutput(ctx, regexp.MustCompile(`to HOT-STANDBY state`)); err != nil {
		pk.Proc.Stop()
		sk.Proc.Stop()
		return nil, fmt.Errorf("kea HA primary never reached HOT-STANDBY: %w", err)
	}
	ppid, err := labbench.ServerPID(pk.Proc)
	if err != nil {
		return nil, err
	}
	spid, err := labbench.ServerPID(sk.Proc)
	if err != nil {
		return nil, err
	}
	return keaHARunning{primary: keaRunning{k: pk, pid: ppid}, standby: keaRunning{k: sk, pid: spid}}, nil
}

func (r keaHARunning) cpu() (time.Duration, error) { return r.primary.cpu() }
func (r keaHARunning) peerCPU() time.Duration {
	d, _ := r.standby.cpu()
	return d
}
func (r keaHARunning) stop() { r.primary.stop(); r.standby.stop() }
