package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hook6/hook6/control"
	"github.com/hook6/hook6/core"
	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/failover"
)

// failoverSide is the daemon's failover endpoint. It always exists; the
// endpoint (cur) is nil while the config has no failover section. A reload
// may replace the endpoint (a changed failover section), start one (a
// section added) or stop it (a section removed), so the engine is given
// functions that ask whichever endpoint is current.
type failoverSide struct {
	d        *daemon
	log      *slog.Logger
	store    lease.Store
	stateDir string

	cur     atomic.Pointer[failover.Endpoint]
	pausing atomic.Bool // the endpoint is being replaced: no client is answered

	mu     sync.Mutex // serialises replacements, and deletes with them
	fc     *config.Failover
	fcfg   failover.Config // of cur, to take it back if a replacement fails
	tlsSum [sha256.Size]byte
	run    *endpointRun
	ctx    context.Context    // the daemon's serving context, nil before start
	stop   context.CancelFunc // stops the daemon
	closed bool
	runs   sync.WaitGroup

	errMu sync.Mutex
	err   error // why an endpoint's Run ended early (a listening failure)
}

// endpointRun is one endpoint being served.
type endpointRun struct {
	cancel context.CancelFunc
	done   chan struct{} // closed once Run returned and the endpoint is closed
}

// newFailover builds the endpoint of cfg's failover section, if it has one.
func newFailover(d *daemon, cfg *config.Config, store lease.Store, log *slog.Logger) (*failoverSide, error) {
	f := &failoverSide{d: d, log: log, store: store, stateDir: cfg.Server.StateDir}
	fc := cfg.Failover
	if fc == nil {
		return f, nil
	}
	fcfg, sum, err := f.prepare(fc)
	if err != nil {
		return nil, err
	}
	ep, err := f.open(fcfg, cfg)
	if err != nil {
		return nil, err
	}
	f.cur.Store(ep)
	f.fc, f.fcfg, f.tlsSum = fc, fcfg, sum
	return f, nil
}

// prepare turns a failover section into the endpoint's configuration,
// loading its TLS files; the digest of the files tells a renewed
// certificate at reload.
func (f *failoverSide) prepare(fc *config.Failover) (failover.Config, [sha256.Size]byte, error) {
	role := failover.Primary
	if fc.Role == config.RoleSecondary {
		role = failover.Secondary
	}
	fcfg := failover.Config{Role: role, Name: fc.Name, Local: fc.Local, Peer: fc.Peer, MCLT: time.Duration(fc.MCLT),
		Keepalive: time.Duration(fc.Keepalive), MaxUnacked: fc.MaxUnacked,
		AutoPartnerDown: time.Duration(fc.AutoPartnerDown), StateDir: f.stateDir}
	var sum [sha256.Size]byte
	if t := fc.TLS; t != nil && !t.Insecure {
		tc, err := failover.LoadTLS(t.Cert, t.Key, t.CA, role)
		if err != nil {
			return fcfg, sum, err
		}
		fcfg.TLS = tc
		if sum, err = tlsDigest(t); err != nil {
			return fcfg, sum, err
		}
	}
	return fcfg, sum, nil
}

// tlsDigest is a digest of the contents of the TLS files.
func tlsDigest(t *config.FailoverTLS) ([sha256.Size]byte, error) {
	h := sha256.New()
	for _, name := range []string{t.Cert, t.Key, t.CA} {
		b, err := os.ReadFile(name)
		if err != nil {
			return [sha256.Size]byte{}, fmt.Errorf("reading failover TLS file: %w", err)
		}
		h.Write([]byte(name))
		h.Write(b)
	}
	return [sha256.Size]byte(h.Sum(nil)), nil
}

// open opens the endpoint of fcfg on the lease store.
func (f *failoverSide) open(fcfg failover.Config, cfg *config.Config) (*failover.Endpoint, error) {
	return failover.New(fcfg, failover.Options{Store: f.store, Layout: layoutOf(cfg), Logger: f.log,
		ApplyConfig: f.applyPushed})
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

// engineOptions plugs failover into the engine: allocation filter, commit
// sink, MCLT cap and admission. They ask the current endpoint; without
// one the server is on its own. While an endpoint is replaced, no client
// message is admitted and no new lease is given.
func (f *failoverSide) engineOptions(o *core.Options) {
	o.Filter = func(p netip.Prefix, k lease.Kind) bool {
		if f.pausing.Load() {
			return false
		}
		ep := f.cur.Load()
		return ep == nil || ep.Filter(p, k)
	}
	o.OnCommit = func(ls []lease.Lease) {
		if ep := f.cur.Load(); ep != nil {
			ep.OnCommit(ls)
		}
	}
	o.CapLifetime = func(l *lease.Lease) time.Duration {
		if ep := f.cur.Load(); ep != nil {
			return ep.CapLifetime(l)
		}
		return l.Valid
	}
	// In states that are not fully responsive, client messages the state
	// does not allow are dropped before any other work.
	o.Admit = func(msgType string, toUs bool) bool {
		if f.pausing.Load() {
			return false
		}
		ep := f.cur.Load()
		return ep == nil || !ep.Restricting() || ep.Admit(msgType, toUs)
	}
}

// start serves the current endpoint (and later ones) until ctx ends. If
// an endpoint cannot serve (the secondary cannot listen), it stops the
// daemon with stop.
func (f *failoverSide) start(ctx context.Context, stop context.CancelFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctx, f.stop = ctx, stop
	if ep := f.cur.Load(); ep != nil {
		f.run = f.launch(ep)
	}
}

// launch runs ep in the background.
func (f *failoverSide) launch(ep *failover.Endpoint) *endpointRun {
	ctx, cancel := context.WithCancel(f.ctx)
	r := &endpointRun{cancel: cancel, done: make(chan struct{})}
	f.runs.Add(1)
	go func() {
		defer f.runs.Done()
		defer close(r.done)
		if err := ep.Run(ctx); err != nil && ctx.Err() == nil {
			f.log.Error("failover stopped; stopping the server", "err", err)
			f.errMu.Lock()
			f.err = err
			f.errMu.Unlock()
			f.stop()
		}
		if err := ep.Close(); err != nil {
			f.log.Error("closing failover", "err", err)
		}
	}()
	return r
}

// halt ends the running endpoint (it sends DISCONNECT to a connected
// partner) and waits until its files are closed.
func (f *failoverSide) halt() {
	if f.run == nil {
		return
	}
	f.run.cancel()
	<-f.run.done
	f.run = nil
}

// wait waits for the endpoints to end (the daemon stops them by ending
// ctx) and returns why one failed, if one did.
func (f *failoverSide) wait() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.runs.Wait()
	f.errMu.Lock()
	defer f.errMu.Unlock()
	return f.err
}

// reloadPlan is what a reload does to failover, decided before anything
// of the new config is applied.
type reloadPlan struct {
	replace bool // stop the current endpoint (if any) and start fc's (if any)
	fc      *config.Failover
	fcfg    failover.Config
	sum     [sha256.Size]byte
}

// plan checks the failover section of a new config. It refuses (and the
// reload with it) a role change and a section that does not build; the
// running endpoint is untouched until apply. restart false (a reload the
// partner's configuration push started, on the endpoint's own goroutine)
// leaves a changed section for the next reload.
func (f *failoverSide) plan(cfg *config.Config, restart bool) (reloadPlan, error) {
	f.mu.Lock()
	cur, curSum, curLocal := f.fc, f.tlsSum, f.fcfg.Local
	f.mu.Unlock()
	fc := cfg.Failover
	p := reloadPlan{fc: fc}
	switch {
	case cur == nil && fc == nil:
		return p, nil
	case cur != nil && fc != nil && cur.Role != fc.Role:
		return p, fmt.Errorf("failover.role cannot change from %s to %s at reload: the role is part of the "+
			"relationship's identity (RFC 8156 §6.2) and decides which half of the addresses and which "+
			"delegation blocks this server gives, so both servers must change together or both would "+
			"lease from the same half; stop both servers, change the role on each, and start them again",
			cur.Role, fc.Role)
	case cur != nil && fc != nil && sameFailover(cur, fc):
		if t := fc.TLS; t == nil || t.Insecure {
			return p, nil
		}
		sum, err := tlsDigest(fc.TLS)
		if err != nil {
			f.log.Warn("failover: cannot read the TLS files to see whether they changed; the endpoint keeps its certificate", "err", err)
			return p, nil
		}
		if sum == curSum {
			return p, nil
		}
		f.log.Info("failover: the TLS files changed")
	}
	if !restart {
		f.log.Warn("the failover section (or its TLS files) changed: run hook6ctl reload to apply it")
		return p, nil
	}
	p.replace = true
	if fc == nil {
		return p, nil
	}
	var err error
	if p.fcfg, p.sum, err = f.prepare(fc); err != nil {
		return p, fmt.Errorf("failover: %w", err)
	}
	if fc.Role == config.RoleSecondary && (cur == nil || fc.Local != curLocal) {
		// Listening is what can fail once the endpoint runs (which would
		// stop the server): try the new address now.
		ln, err := net.Listen("tcp", fc.Local)
		if err != nil {
			return p, fmt.Errorf("failover.local: %w", err)
		}
		ln.Close()
	}
	return p, nil
}

// sameFailover reports whether two failover sections are equal.
func sameFailover(a, b *config.Failover) bool {
	x, y := *a, *b
	x.TLS, y.TLS = nil, nil
	if x != y || (a.TLS == nil) != (b.TLS == nil) {
		return false
	}
	return a.TLS == nil || *a.TLS == *b.TLS
}

// apply carries out a plan once the rest of the new config is in place.
// A replaced endpoint says DISCONNECT to its partner and closes its files;
// the new one opens the same state (kept when the relationship name is
// the same, see failover.New) and starts in STARTUP. If the new endpoint
// cannot be opened, the previous one is started again.
func (f *failoverSide) apply(p reloadPlan, cfg *config.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !p.replace {
		if ep := f.cur.Load(); ep != nil {
			ep.SetLayout(layoutOf(cfg))
		}
		return nil
	}
	if f.closed {
		return errors.New("the server is stopping")
	}
	f.pausing.Store(true)
	defer f.pausing.Store(false)
	old := f.fc
	f.halt()
	if p.fc == nil {
		f.cur.Store(nil)
		f.fc = nil
		f.log.Warn("failover stopped: the failover section was removed; this server now leases on its own")
		return nil
	}
	ep, err := f.open(p.fcfg, cfg)
	if err != nil {
		err = fmt.Errorf("failover: starting the new endpoint: %w", err)
		if old == nil {
			f.cur.Store(nil)
			return err
		}
		prev, perr := f.open(f.fcfg, cfg)
		if perr != nil {
			f.cur.Store(nil)
			f.fc = nil
			return fmt.Errorf("%w; the previous endpoint could not be started again either: %v", err, perr)
		}
		f.cur.Store(prev)
		if f.ctx != nil && !f.closed {
			f.run = f.launch(prev)
		}
		return fmt.Errorf("%w; the previous failover settings keep serving", err)
	}
	f.cur.Store(ep)
	f.fc, f.fcfg, f.tlsSum = p.fc, p.fcfg, p.sum
	if f.ctx != nil && !f.closed {
		f.run = f.launch(ep)
	}
	verb := "restarted with the new failover settings"
	if old == nil {
		verb = "started"
	}
	f.log.Info("failover "+verb, "name", p.fc.Name, "role", p.fc.Role, "peer", p.fc.Peer)
	return nil
}

// deleteWithin runs del (the engine's delete of every lease inside
// within) and sends the removed leases to the partner as RESET, so the
// operator's delete reaches both servers.
func (f *failoverSide) deleteWithin(ctx context.Context, within netip.Prefix,
	del func(context.Context, netip.Prefix) (int, error)) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ep := f.cur.Load()
	if ep == nil {
		return del(ctx, within)
	}
	var last []lease.Lease
	f.store.Range(func(l lease.Lease) bool {
		if control.Within(within, l.Prefix) {
			last = append(last, l)
		}
		return true
	})
	n, err := del(ctx, within)
	gone := last[:0]
	for _, l := range last {
		if _, ok := f.store.Get(l.Prefix); !ok {
			gone = append(gone, l)
		}
	}
	if rerr := ep.Reset(gone); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return n, err
}

func (f *failoverSide) stateName() string {
	if ep := f.cur.Load(); ep != nil {
		return ep.State().String()
	}
	return ""
}

func (f *failoverSide) stats() (map[string]any, bool) {
	if ep := f.cur.Load(); ep != nil {
		return ep.Stats(), true
	}
	return nil, false
}

// routes adds the failover endpoints to the control API; without a
// failover section they answer 409.
func (f *failoverSide) routes(s *control.Server) {
	s.Handle("GET /v1/failover/status", f.handle(func(ep *failover.Endpoint, w http.ResponseWriter, r *http.Request) {
		control.WriteJSON(w, http.StatusOK, ep.Status())
	}))
	s.Handle("POST /v1/failover/partnerdown", f.handle(f.partnerDown))
	s.Handle("POST /v1/failover/sync", f.handle(f.sync))
}

func (f *failoverSide) handle(h func(*failover.Endpoint, http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep := f.cur.Load()
		if ep == nil {
			control.WriteError(w, http.StatusConflict, errors.New("failover is not configured on this server"))
			return
		}
		h(ep, w, r)
	})
}

// PartnerDownRequest is the body of POST /v1/failover/partnerdown.
type PartnerDownRequest struct {
	At time.Time `json:"at,omitzero"` // when the partner went down; zero: now
}

func (f *failoverSide) partnerDown(ep *failover.Endpoint, w http.ResponseWriter, r *http.Request) {
	var req PartnerDownRequest
	if err := decodeBody(r, &req); err != nil {
		control.WriteError(w, http.StatusBadRequest, err)
		return
	}
	if err := ep.SetPartnerDown(req.At); err != nil {
		control.WriteError(w, http.StatusConflict, err)
		return
	}
	control.WriteJSON(w, http.StatusOK, ep.Status())
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

func (f *failoverSide) sync(ep *failover.Endpoint, w http.ResponseWriter, r *http.Request) {
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
	if err := ep.SyncConfig(r.Context(), sections, req.Exact); err != nil {
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
	// The partner's push runs on the endpoint's own connection: the
	// endpoint cannot be replaced from there (the failover section is not
	// pushed; a changed one waits for the next reload).
	if err := d.reload(false); err != nil {
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
