package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hook6/hook6/control"
	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/hooks"
)

// extensionSet builds the extension chain from the config and retires old
// chains after a reload.
type extensionSet struct {
	log     *slog.Logger
	current *hooks.Chain
}

func newExtensionSet(log *slog.Logger) *extensionSet { return &extensionSet{log: log} }

// build loads the config's extensions into a new chain.
func (e *extensionSet) build(cfg *config.Config) (hooks.Runner, error) {
	if len(cfg.Extensions) == 0 {
		return nil, nil
	}
	return nil, fmt.Errorf("%d extensions configured but this build has no extension loader", len(cfg.Extensions))
}

// discard retires a chain that is no longer used, letting calls in flight end.
func (e *extensionSet) discard(r hooks.Runner) {
	if ch, ok := r.(*hooks.Chain); ok && ch != nil {
		go func() { <-ch.Retire(5 * time.Second) }()
	}
}

func (e *extensionSet) close() {
	if e.current != nil {
		e.current.Close()
	}
}

func (e *extensionSet) stats() map[string]hooks.ExtStats {
	if e.current == nil {
		return map[string]hooks.ExtStats{}
	}
	return e.current.Stats()
}

func (e *extensionSet) counters() map[string]map[string]uint64 { return map[string]map[string]uint64{} }

func (e *extensionSet) routes(*control.Server) {}
