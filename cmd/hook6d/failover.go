package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/hook6/hook6/control"
	"github.com/hook6/hook6/core"
	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/failover"
)

// failoverSide is the daemon's failover endpoint, nil when the config has
// no failover section (every method then does nothing).
type failoverSide struct {
	ep   *failover.Endpoint
	d    *daemon
	log  *slog.Logger
	done chan struct{}
	err  error // why Run ended early (a listening failure)
}

// newFailover builds the endpoint of cfg's failover section.
func newFailover(d *daemon, cfg *config.Config, store lease.Store, log *slog.Logger) (*failoverSide, error) {
	fc := cfg.Failover
	if fc == nil {
		return nil, nil
	}
	role := failover.Primary
	if fc.Role == config.RoleSecondary {
		role = failover.Secondary
	}
	fcfg := failover.Config{Role: role, Name: fc.Name, Local: fc.Local, Peer: fc.Peer, MCLT: time.Duration(fc.MCLT),
		Keepalive: time.Duration(fc.Keepalive), MaxUnacked: fc.MaxUnacked,
		AutoPartnerDown: time.Duration(fc.AutoPartnerDown), StateDir: cfg.Server.StateDir}
	if t := fc.TLS; t != nil && !t.Insecure {
		tc, err := failover.LoadTLS(t.Cert, t.Key, t.CA, role)
		if err != nil {
			return nil, err
		}
		fcfg.TLS = tc
	}
	f := &failoverSide{d: d, log: log, done: make(chan struct{})}
	ep, err := failover.New(fcfg, failover.Options{Store: store, Layout: layoutOf(cfg), Logger: log,
		ApplyConfig: f.applyPushed})
	if err != nil {
		return nil, err
	}
	f.ep = ep
	return f, nil
}

// layoutOf describes the configured prefixes for failover.
func layoutOf(cfg *config.Config) *failover.Layout {
	lo := &failover.Layout{}
	for _, p := range cfg.Prefixes {
		k, length := lease.NA, 128
		if p.DHCPType == config.TypePrefixDelegation {
			k, length = lease.PD, p.PrefixLength
		}
		var valid time.Duration
		if pol := cfg.Policy(p.Policy); pol != nil {
			valid = time.Duration(pol.ValidLifetime)
		}
		lo.Prefixes = append(lo.Prefixes, failover.Prefix{Name: p.Name, Link: p.Link, Kind: k,
			Address: p.Address.Masked(), Pool: p.Pool().Masked(), Length: length, Valid: valid})
	}
	lo.Reserved = map[netip.Prefix]bool{}
	for _, r := range cfg.Reservations {
		if r.Address.IsValid() {
			lo.Reserved[netip.PrefixFrom(r.Address, 128)] = true
		}
		if r.Prefix.IsValid() {
			lo.Reserved[r.Prefix.Masked()] = true
		}
	}
	return lo
}

// engineOptions plugs the endpoint into the engine: allocation filter,
// commit sink and MCLT cap.
func (f *failoverSide) engineOptions(o *core.Options) {
	if f == nil {
		return
	}
	o.Filter, o.OnCommit, o.CapLifetime = f.ep.Filter, f.ep.OnCommit, f.ep.CapLifetime
	// In states that are not fully responsive, client messages the state
	// does not allow are dropped before any other work.
	o.Admit = func(msgType string, toUs bool) bool { return !f.ep.Restricting() || f.ep.Admit(msgType, toUs) }
}

// run serves the relationship until ctx ends, then closes the endpoint.
// If it cannot serve (the secondary cannot listen), it stops the daemon
// with stop.
func (f *failoverSide) run(ctx context.Context, stop context.CancelFunc) {
	if f == nil {
		return
	}
	defer close(f.done)
	if err := f.ep.Run(ctx); err != nil {
		f.log.Error("failover stopped; stopping the server", "err", err)
		f.err = err
		stop()
	}
	if err := f.ep.Close(); err != nil {
		f.log.Error("closing failover", "err", err)
	}
}

// wait waits for run to end (the daemon stops it by ending ctx) and
// returns why it failed, if it did.
func (f *failoverSide) wait() error {
	if f == nil {
		return nil
	}
	<-f.done
	return f.err
}

// reload gives the endpoint the prefixes of a new config.
func (f *failoverSide) reload(old, cfg *config.Config) {
	if f == nil {
		if cfg.Failover != nil {
			f.warnRestart()
		}
		return
	}
	f.ep.SetLayout(layoutOf(cfg))
	if cfg.Failover == nil || old.Failover == nil || *cfg.Failover.TLS != *old.Failover.TLS ||
		stripTLS(*cfg.Failover) != stripTLS(*old.Failover) {
		f.warnRestart()
	}
}

func stripTLS(fc config.Failover) config.Failover {
	fc.TLS = nil
	return fc
}

func (f *failoverSide) warnRestart() {
	slog.Default().Warn("the failover section changed: restart hook6d to apply it (prefixes and policies are applied now)")
}

func (f *failoverSide) stateName() string {
	if f == nil {
		return ""
	}
	return f.ep.State().String()
}

func (f *failoverSide) stats() (map[string]any, bool) {
	if f == nil {
		return nil, false
	}
	return f.ep.Stats(), true
}

// routes adds the failover endpoints to the control API; without a
// failover section they answer 409.
func (f *failoverSide) routes(s *control.Server) {
	s.Handle("GET /v1/failover/status", f.handle(func(w http.ResponseWriter, r *http.Request) {
		control.WriteJSON(w, http.StatusOK, f.ep.Status())
	}))
	s.Handle("POST /v1/failover/partnerdown", f.handle(f.partnerDown))
	s.Handle("POST /v1/failover/sync", f.handle(f.sync))
}

func (f *failoverSide) handle(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f == nil {
			control.WriteError(w, http.StatusConflict, errors.New("failover is not configured on this server"))
			return
		}
		h(w, r)
	})
}

// PartnerDownRequest is the body of POST /v1/failover/partnerdown.
type PartnerDownRequest struct {
	At time.Time `json:"at,omitzero"` // when the partner went down; zero: now
}

func (f *failoverSide) partnerDown(w http.ResponseWriter, r *http.Request) {
	var req PartnerDownRequest
	if err := decodeBody(r, &req); err != nil {
		control.WriteError(w, http.StatusBadRequest, err)
		return
	}
	if err := f.ep.SetPartnerDown(req.At); err != nil {
		control.WriteError(w, http.StatusConflict, err)
		return
	}
	control.WriteJSON(w, http.StatusOK, f.ep.Status())
}

// SyncRequest is the body of POST /v1/failover/sync.
type SyncRequest struct {
	Exact bool `json:"exact"`
}

// SyncResult is the answer of POST /v1/failover/sync.
type SyncResult struct {
	Exact    bool     `json:"exact"`
	Sections []string `json:"sections"`
	Bytes    int      `json:"bytes"`
}

func (f *failoverSide) sync(w http.ResponseWriter, r *http.Request) {
	var req SyncRequest
	if err := decodeBody(r, &req); err != nil {
		control.WriteError(w, http.StatusBadRequest, err)
		return
	}
	f.d.mu.Lock()
	file := f.d.cfgPath
	f.d.mu.Unlock()
	if file == "" {
		control.WriteError(w, http.StatusConflict, errors.New("this server runs the embedded default config: nothing to sync"))
		return
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		control.WriteError(w, http.StatusInternalServerError, fmt.Errorf("reading the config: %w", err))
		return
	}
	sections, err := failover.ExtractSections(raw)
	if err != nil {
		control.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	if err := f.ep.SyncConfig(r.Context(), sections, req.Exact); err != nil {
		control.WriteError(w, http.StatusConflict, err)
		return
	}
	f.log.Info("failover: configuration pushed to the secondary", "exact", req.Exact, "bytes", len(sections))
	control.WriteJSON(w, http.StatusOK, SyncResult{Exact: req.Exact, Sections: failover.SyncedSections, Bytes: len(sections)})
}

func decodeBody(r *http.Request, v any) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	return nil
}

// applyPushed is the secondary's side of failover sync: merge the pushed
// sections into the config file (keeping the server and failover
// sections), check it, write it (the previous file is kept as FILE.bak)
// and reload; a config that does not load or reload leaves the old file
// in place.
func (f *failoverSide) applyPushed(sections []byte, exact bool) error {
	d := f.d
	d.mu.Lock()
	file := d.cfgPath
	d.mu.Unlock()
	if file == "" {
		return errors.New("the secondary runs the embedded default config; start it with -c FILE to accept pushes")
	}
	old, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	merged, err := failover.MergeConfig(old, sections, exact)
	if err != nil {
		return err
	}
	if _, err := config.Parse(file, merged); err != nil {
		return fmt.Errorf("the merged config does not load: %w", err)
	}
	if err := writeFileAtomic(file+".bak", old); err != nil {
		return err
	}
	if err := writeFileAtomic(file, merged); err != nil {
		return err
	}
	if err := d.Reload(); err != nil {
		if rerr := writeFileAtomic(file, old); rerr != nil {
			return fmt.Errorf("reload failed (%v) and restoring %s failed: %w", err, file, rerr)
		}
		return fmt.Errorf("reload refused, previous config restored: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data (a temporary file renamed over
// it), keeping path's mode.
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
