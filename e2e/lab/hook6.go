package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/goccy/go-yaml"
)

// Config is a hook6d configuration, shaped as core/config reads it (see
// docs/configuration.md). Fields left empty are left out of the YAML file,
// so the daemon's defaults apply.
type Config struct {
	Server       ServerConfig      `yaml:"server"`
	Control      ControlConfig     `yaml:"control"`
	Metrics      *MetricsConfig    `yaml:"metrics,omitempty"`
	Log          *LogConfig        `yaml:"log,omitempty"`
	Policies     map[string]Policy `yaml:"policies,omitempty"`
	Links        []Link            `yaml:"links,omitempty"`
	Prefixes     []Prefix          `yaml:"prefixes,omitempty"`
	Reservations []Reservation     `yaml:"reservations,omitempty"`
	Extensions   []Extension       `yaml:"extensions,omitempty"`
	Plugins      *PluginsConfig    `yaml:"plugins,omitempty"`
	// Failover is written as given (role, name, local, peer, mclt, tls, ...).
	Failover map[string]any `yaml:"failover,omitempty"`
}

// ServerConfig is the server section.
type ServerConfig struct {
	Interfaces []string `yaml:"interfaces,omitempty"`
	StateDir   string   `yaml:"state-dir,omitempty"`
	Listen     string   `yaml:"listen,omitempty"`
	Workers    int      `yaml:"workers,omitempty"`
}

// ControlConfig is the control section.
type ControlConfig struct {
	Socket string `yaml:"socket,omitempty"`
}

// MetricsConfig is the metrics section.
type MetricsConfig struct {
	Listen string `yaml:"listen,omitempty"`
}

// LogConfig is the log section.
type LogConfig struct {
	Level  string `yaml:"level,omitempty"`
	Format string `yaml:"format,omitempty"`
}

// Policy is one entry of the policies section. Durations are written as
// hook6 reads them ("20s", "1h", "7d").
type Policy struct {
	PreferredLifetime   string         `yaml:"preferred-lifetime,omitempty"`
	ValidLifetime       string         `yaml:"valid-lifetime,omitempty"`
	T1                  string         `yaml:"t1,omitempty"`
	T2                  string         `yaml:"t2,omitempty"`
	AllowRapidCommit    bool           `yaml:"allow-rapid-commit,omitempty"`
	MaxLeasesPerBinding int            `yaml:"max-leases-per-binding,omitempty"`
	Options             *PolicyOptions `yaml:"options,omitempty"`
}

// PolicyOptions are the options a policy adds to replies.
type PolicyOptions struct {
	Preference *int     `yaml:"preference,omitempty"`
	DNSServers []string `yaml:"dns-servers,omitempty"`
}

// Link is one entry of the links section.
type Link struct {
	Name        string `yaml:"name"`
	Interface   string `yaml:"interface,omitempty"`
	InterfaceID string `yaml:"interface-id,omitempty"`
	Policy      string `yaml:"policy,omitempty"`
}

// Prefix is one entry of the prefixes section.
type Prefix struct {
	Name                 string   `yaml:"name"`
	Link                 string   `yaml:"link,omitempty"`
	Address              string   `yaml:"address"`
	Range                string   `yaml:"range,omitempty"`
	DHCPType             string   `yaml:"dhcp-type,omitempty"`
	AllocationAlgorithms []string `yaml:"allocation-algorithms,omitempty"`
	PrefixLength         int      `yaml:"prefix-length,omitempty"`
	Policy               string   `yaml:"policy,omitempty"`
}

// Reservation is one entry of the reservations section.
type Reservation struct {
	DUID    string `yaml:"duid"`
	Address string `yaml:"address,omitempty"`
	Prefix  string `yaml:"prefix,omitempty"`
	Link    string `yaml:"link,omitempty"`
}

// Extension is one entry of the extensions section.
type Extension struct {
	Name        string            `yaml:"name"`
	Script      string            `yaml:"script,omitempty"`
	Plugin      string            `yaml:"plugin,omitempty"`
	Builtin     string            `yaml:"builtin,omitempty"`
	Points      []string          `yaml:"points,omitempty"`
	InitArgs    map[string]string `yaml:"init-args,omitempty"`
	Budget      string            `yaml:"budget,omitempty"`
	FailureMode string            `yaml:"failure-mode,omitempty"`
}

// PluginsConfig is the plugins section.
type PluginsConfig struct {
	Dir string `yaml:"dir,omitempty"`
}

// YAML renders the configuration.
func (c Config) YAML() ([]byte, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("render hook6d config: %w", err)
	}
	return b, nil
}

// Hook6d is a hook6d daemon running in a namespace of the lab.
type Hook6d struct {
	ConfigPath string
	StateDir   string
	Socket     string
	lab        *Lab
	ns         *Netns
	bins       Binaries
	proc       *Process
	starts     int
}

// StartHook6d writes cfg (with state-dir and control socket placed in the
// lab's directory when empty) and starts hook6d -c with it in ns. It
// returns once the control socket answers `hook6ctl status`.
func (l *Lab) StartHook6d(ns *Netns, bins Binaries, cfg Config) *Hook6d {
	l.t.Helper()
	d := &Hook6d{lab: l, ns: ns, bins: bins}
	name := l.unique("hook6d-" + ns.Name)
	if cfg.Server.StateDir == "" {
		cfg.Server.StateDir = l.MkdirTemp("hook6-state-")
	}
	if cfg.Control.Socket == "" {
		cfg.Control.Socket = filepath.Join(l.shortDir(), "control.sock")
	}
	d.StateDir, d.Socket = cfg.Server.StateDir, cfg.Control.Socket
	y, err := cfg.YAML()
	if err != nil {
		l.t.Fatalf("lab: %v", err)
	}
	d.ConfigPath = l.WriteFile(name+".yaml", y, 0o644)
	d.Start()
	return d
}

// WriteConfig replaces the daemon's configuration file with cfg, keeping
// its state directory and control socket; the daemon reads it on reload,
// SIGHUP or restart.
func (d *Hook6d) WriteConfig(cfg Config) {
	d.lab.t.Helper()
	cfg.Server.StateDir, cfg.Control.Socket = d.StateDir, d.Socket
	y, err := cfg.YAML()
	if err != nil {
		d.lab.t.Fatalf("lab: %v", err)
	}
	d.WriteConfigYAML(y)
}

// WriteConfigYAML replaces the configuration file with raw YAML, as is.
func (d *Hook6d) WriteConfigYAML(y []byte) {
	d.lab.t.Helper()
	if err := os.WriteFile(d.ConfigPath, y, 0o644); err != nil {
		d.lab.t.Fatalf("lab: write hook6d config: %v", err)
	}
}

// Start (re)starts the daemon with its configuration and state directory
// and waits until it is ready.
func (d *Hook6d) Start() {
	d.lab.t.Helper()
	if d.proc != nil && !d.proc.Exited() {
		d.lab.t.Fatal("lab: hook6d is already running")
	}
	// A socket file left by a killed daemon must not pass for readiness.
	_ = os.Remove(d.Socket)
	d.starts++
	d.proc = d.ns.Start(fmt.Sprintf("hook6d#%d", d.starts), d.bins.Hook6d, "-c", d.ConfigPath)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.WaitReady(ctx); err != nil {
		d.lab.t.Fatalf("lab: %v", err)
	}
}

// WaitReady waits until the control socket answers `hook6ctl status`.
func (d *Hook6d) WaitReady(ctx context.Context) error {
	var last error
	for {
		if d.proc.Exited() {
			return fmt.Errorf("hook6d exited before it was ready: %v", d.proc.Err())
		}
		if _, err := os.Stat(d.Socket); err == nil {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, last = d.Ctl().Run(sctx, "status")
			cancel()
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for hook6d's control socket %s: %w (last: %v)", d.Socket, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Process is the running daemon process.
func (d *Hook6d) Process() *Process { return d.proc }

// Kill kills the daemon with SIGKILL, as a crash would.
func (d *Hook6d) Kill() {
	d.lab.t.Helper()
	if err := d.proc.Kill(); err != nil {
		d.lab.t.Fatalf("lab: %v", err)
	}
}

// Stop stops the daemon with SIGTERM.
func (d *Hook6d) Stop() {
	d.lab.t.Helper()
	if err := d.proc.Stop(); err != nil {
		d.lab.t.Fatalf("lab: %v", err)
	}
}

// Ctl returns a hook6ctl runner for the daemon's control socket.
func (d *Hook6d) Ctl() *Ctl { return &Ctl{Bin: d.bins.Hook6ctl, Socket: d.Socket} }

// Logs returns everything the daemon printed since its last start.
func (d *Hook6d) Logs() string { return d.proc.Output() }

// WaitLog waits until the daemon's log matches re.
func (d *Hook6d) WaitLog(ctx context.Context, re *regexp.Regexp) error {
	return d.proc.WaitOutput(ctx, re)
}
