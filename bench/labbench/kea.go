package labbench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// KeaConfig is the reference server's setup: kea-dhcp6 multi-threaded,
// memfile with persistence (its best single-box setup), one subnet served
// on one interface with an address pool and a PD pool.
type KeaConfig struct {
	Interface  string
	Subnet     string // the /64, also the whole address pool
	PDPrefix   string // e.g. 2001:db8:8000::/40
	PDLen      int    // delegated length
	Preferred  time.Duration
	Valid      time.Duration
	Threads    int // thread-pool-size; 0 turns multi-threading off
	QueueSize  int // packet-queue-size; 0 leaves Kea's default (64)
	LogWarning bool
}

// JSON renders the kea-dhcp6 configuration with its files inside dir.
func (c KeaConfig) JSON(dir string) ([]byte, error) {
	pd, err := netip.ParsePrefix(c.PDPrefix)
	if err != nil {
		return nil, fmt.Errorf("kea pd-pool: %w", err)
	}
	pref, valid := int(c.Preferred/time.Second), int(c.Valid/time.Second)
	mt := map[string]any{"enable-multi-threading": c.Threads > 0}
	if c.Threads > 0 {
		mt["thread-pool-size"] = c.Threads
		if c.QueueSize > 0 {
			mt["packet-queue-size"] = c.QueueSize
		}
	}
	severity := "INFO"
	if c.LogWarning {
		severity = "WARN"
	}
	d := map[string]any{
		"interfaces-config": map[string]any{"interfaces": []string{c.Interface}},
		"data-directory":    dir,
		"server-id":         map[string]any{"type": "LLT", "persist": false},
		"lease-database": map[string]any{
			"type": "memfile", "persist": true,
			"name": filepath.Join(dir, "leases6.csv"), "lfc-interval": 0,
		},
		"preferred-lifetime": pref,
		"valid-lifetime":     valid,
		"renew-timer":        pref / 2,
		"rebind-timer":       pref * 4 / 5,
		"multi-threading":    mt,
		"subnet6": []map[string]any{{
			"id": 1, "subnet": c.Subnet, "interface": c.Interface,
			"pools": []map[string]any{{"pool": c.Subnet}},
			"pd-pools": []map[string]any{{
				"prefix": pd.Addr().String(), "prefix-len": pd.Bits(), "delegated-len": c.PDLen,
			}},
		}},
		"loggers": []map[string]any{{
			"name": "kea-dhcp6", "severity": severity,
			"output_options": []map[string]any{{"output": "stdout"}},
		}},
	}
	b, err := json.MarshalIndent(map[string]any{"Dhcp6": d}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render kea config: %w", err)
	}
	return b, nil
}

// Kea is a running kea-dhcp6.
type Kea struct {
	Dir  string
	Proc *lab.Process
}

// StartKea writes cfg into a fresh directory of the lab and starts
// kea-dhcp6 in ns; it returns once Kea logged that it serves. Kea's pid
// and lock files go to the same directory.
func StartKea(l *lab.Lab, ns *lab.Netns, cfg KeaConfig) (*Kea, error) {
	dir := l.MkdirTemp("kea-")
	b, err := cfg.JSON(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "kea-dhcp6.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, fmt.Errorf("write kea config: %w", err)
	}
	cmd := ns.Command(context.Background(), "kea-dhcp6", "-c", path)
	cmd.Env = append(cmd.Environ(), "KEA_PIDFILE_DIR="+dir, "KEA_LOCKFILE_DIR="+dir)
	p, err := ns.StartCmd("kea-dhcp6", cmd)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// At WARN Kea prints nothing when it starts; then wait until its
	// socket is bound, seen as the process having opened UDP port 547.
	if cfg.LogWarning {
		if err := waitUDPPort(ctx, p, 547); err != nil {
			return nil, fmt.Errorf("kea-dhcp6: %w", err)
		}
	} else if err := p.WaitOutput(ctx, regexp.MustCompile(`DHCP6_STARTED`)); err != nil {
		return nil, fmt.Errorf("kea-dhcp6: %w", err)
	}
	return &Kea{Dir: dir, Proc: p}, nil
}
