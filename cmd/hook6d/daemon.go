package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/hook6/hook6/control"
	"github.com/hook6/hook6/core"
	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
)

// daemon wires the config, the lease store, the engine, its socket, the
// extensions, the control API and the metrics together.
type daemon struct {
	log      *slog.Logger
	cfgPath  string
	started  time.Time
	store    *lease.BoltStore
	srv      *core.Server
	listener *core.Listener
	control  *control.Server
	exts     *extensionSet
	fo       *failoverSide

	mu  sync.Mutex // serialises reloads
	cfg *config.Config
}

func start(ctx context.Context, cfgPath string, cfg *config.Config, log *slog.Logger) (*daemon, error) {
	d := &daemon{log: log, cfgPath: cfgPath, cfg: cfg, started: time.Now()}
	if err := os.MkdirAll(cfg.Server.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	duid := []byte(cfg.Server.ServerDUID)
	if len(duid) == 0 {
		var err error
		if duid, err = core.LoadOrCreateDUID(cfg.Server.StateDir); err != nil {
			return nil, err
		}
	}
	store, err := lease.Open(filepath.Join(cfg.Server.StateDir, "leases.db"), lease.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("opening lease store: %w", err)
	}
	d.store = store
	if d.fo, err = newFailover(d, cfg, store, log); err != nil {
		store.Close()
		return nil, fmt.Errorf("failover: %w", err)
	}
	opts := core.Options{Store: store, Logger: log, ServerDUID: duid}
	d.fo.engineOptions(&opts)
	d.srv, err = core.New(cfg, opts)
	if err != nil {
		store.Close()
		return nil, err
	}
	d.exts = newExtensionSet(log)
	runner, err := d.exts.build(cfg)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("loading extensions: %w", err)
	}
	d.srv.SetRunner(runner)
	d.exts.use(runner)
	d.listener, err = core.Listen(cfg.Server.Listen, cfg.Server.Interfaces)
	if err != nil {
		store.Close()
		return nil, err
	}
	d.control = control.NewServer(d, log)
	d.exts.routes(d.control)
	d.fo.routes(d.control)
	log.Info("hook6d started", "version", version, "config", cfg.File, "listen", d.listener.LocalAddr(),
		"interfaces", cfg.Server.Interfaces, "leases", store.Len(), "server-duid", control.FormatDUID(duid))
	// Loading the leases left garbage the size of the database (records
	// decoded on the way into the index); collect it and hand its pages
	// back now rather than whenever the runtime gets round to it. In the
	// background: the server is ready meanwhile.
	go debug.FreeOSMemory()
	return d, nil
}

// serve runs until ctx ends: the packet loop, expiry reclaim, the control
// socket, metrics, and SIGHUP reloads.
func (d *daemon) serve(ctx context.Context) error {
	defer d.store.Close()
	defer d.exts.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	d.fo.start(ctx, cancel)
	go d.srv.Reclaim(ctx, 10*time.Second)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.control.Serve(ctx, d.cfg.Control.Socket); err != nil {
			d.log.Error("control socket", "err", err)
		}
	}()
	if addr := d.cfg.Metrics.Listen; addr != "" {
		go d.serveMetrics(ctx, addr)
	}
	go d.reloadOnHUP(ctx)
	err := d.listener.Serve(ctx, d.srv, d.cfg.Server.Workers)
	cancel()
	wg.Wait()
	if ferr := d.fo.wait(); err == nil {
		err = ferr
	}
	d.log.Info("hook6d stopped")
	return err
}

func (d *daemon) reloadOnHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := d.Reload(); err != nil {
				d.log.Error("reload refused, the old config keeps serving", "err", err)
			}
		}
	}
}

func (d *daemon) serveMetrics(ctx context.Context, addr string) {
	hs := &http.Server{Addr: addr, Handler: metricsHandler(d), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		d.log.Error("metrics listener", "addr", addr, "err", err)
	}
}

// Reload re-reads the config file and swaps in the new config and
// extensions; a config, extension or failover section that does not load
// is refused and the old one keeps serving. A changed failover section
// replaces the failover endpoint. Leases are untouched.
func (d *daemon) Reload() error { return d.reload(true) }

// reload is Reload; restartFailover false leaves the failover endpoint in
// place even if its section changed.
func (d *daemon) reload(restartFailover bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg, err := loadConfig(d.cfgPath)
	if err != nil {
		return err
	}
	fp, err := d.fo.plan(cfg, restartFailover)
	if err != nil {
		return err
	}
	runner, err := d.exts.build(cfg)
	if err != nil {
		return fmt.Errorf("loading extensions: %w", err)
	}
	if err := d.srv.Reload(cfg); err != nil {
		d.exts.discard(runner)
		return err
	}
	if err := d.listener.Join(cfg.Server.Interfaces); err != nil {
		d.log.Warn("joining multicast on new interfaces", "err", err)
	}
	old := d.srv.Runner()
	d.srv.SetRunner(runner)
	d.exts.use(runner)
	d.exts.discard(old)
	d.cfg = cfg
	if err := d.fo.apply(fp, cfg); err != nil {
		d.log.Error("config reloaded except its failover section", "config", cfg.File, "err", err)
		return fmt.Errorf("config reloaded except its failover section: %w", err)
	}
	d.log.Info("config reloaded", "config", cfg.File)
	return nil
}

// Status implements control.Backend.
func (d *daemon) Status() control.Status {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	return control.Status{
		Version: version, UptimeSeconds: int64(time.Since(d.started).Seconds()),
		ServerDUID: control.FormatDUID(d.srv.ServerDUID()), ConfigFile: cfg.File,
		Interfaces: cfg.Server.Interfaces, Links: len(cfg.Links), Leases: d.store.Len(),
		Failover: d.fo.stateName(),
	}
}

// Leases implements control.Backend.
func (d *daemon) Leases(f control.LeaseFilter) ([]control.Lease, error) {
	var out []control.Lease
	d.store.Range(func(l lease.Lease) bool {
		if f.Matches(l.Prefix, l.DUID) {
			out = append(out, control.LeaseOf(l))
		}
		return true
	})
	return out, nil
}

// Lease implements control.Backend.
func (d *daemon) Lease(p netip.Prefix) (control.Lease, bool) {
	l, ok := d.store.Get(p)
	if !ok {
		return control.Lease{}, false
	}
	return control.LeaseOf(l), true
}

// DeleteLeases implements control.Backend.
func (d *daemon) DeleteLeases(ctx context.Context, within netip.Prefix) (int, error) {
	return d.fo.deleteWithin(ctx, within, d.srv.DeleteWithin)
}

// Stats implements control.Backend.
func (d *daemon) Stats() map[string]any {
	st := d.store.Stats()
	m := map[string]any{
		"packets":    d.srv.Stats().Snapshot(),
		"leases":     st,
		"extensions": d.exts.stats(),
	}
	if fs, ok := d.fo.stats(); ok {
		m["failover"] = fs
	}
	return m
}
