// Package extensions holds hook6's built-in extensions (drop-flag,
// preference, env-lease, …), their registry, and Build, which turns the
// config's extensions section into the hooks.Chain the server runs:
// scripts through hooks/script, plugins through a factory the daemon
// provides, built-ins from the registry.
package extensions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/script"
)

// PluginFactory starts the plugin of an extension (spec.Plugin names it);
// points are the spec's points, parsed.
type PluginFactory func(ctx context.Context, spec *config.Extension, points []hooks.Point) (hooks.Extension, error)

// BuildOptions are what Build needs besides the config.
type BuildOptions struct {
	// Context bounds starting plugins.
	Context context.Context
	// Log is the server's logger; each extension logs with its name.
	Log *slog.Logger
	// Builtins is the registry of built-ins; nil means Builtins().
	Builtins map[string]Factory
	// Plugin starts plugin extensions; nil refuses them.
	Plugin PluginFactory
	// BaseDir resolves relative script paths (the config file's
	// directory); "" means the working directory.
	BaseDir string
	// ScriptWorkers is the number of workers per script (0: default).
	ScriptWorkers int
}

// Build builds every extension of specs, in order, and the chain running
// them. Every spec is tried, so all errors are reported at once (a
// script's compile errors with file:line); on error nothing stays open.
func Build(specs []*config.Extension, opts BuildOptions) (*hooks.Chain, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	if opts.Builtins == nil {
		opts.Builtins = Builtins()
	}
	var members []hooks.Member
	var errs []error
	for i, spec := range specs {
		m, err := buildOne(spec, opts)
		if err != nil {
			name := fmt.Sprintf("#%d", i+1)
			if spec != nil && spec.Name != "" {
				name = spec.Name
			}
			errs = append(errs, fmt.Errorf("extension %s: %w", name, err))
			continue
		}
		members = append(members, m)
	}
	var ch *hooks.Chain
	if len(errs) == 0 {
		var err error
		if ch, err = hooks.NewChain(members, opts.Log); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		for _, m := range members {
			if c, ok := m.Extension.(hooks.Closer); ok {
				c.Close()
			}
		}
		return nil, errors.Join(errs...)
	}
	return ch, nil
}

// buildOne builds one extension with its budget and failure mode.
func buildOne(spec *config.Extension, opts BuildOptions) (hooks.Member, error) {
	var m hooks.Member
	if spec == nil || spec.Name == "" {
		return m, errors.New("name is required")
	}
	kinds := 0
	for _, s := range []string{spec.Script, spec.Plugin, spec.Builtin} {
		if s != "" {
			kinds++
		}
	}
	if kinds != 1 {
		return m, errors.New("set exactly one of script, plugin and builtin")
	}
	points, err := ParsePoints(spec.Points)
	if err != nil {
		return m, err
	}
	if m.FailureMode, err = hooks.ParseFailureMode(spec.FailureMode); err != nil {
		return m, err
	}
	if spec.Budget < 0 {
		return m, fmt.Errorf("budget %v is negative", spec.Budget)
	}
	m.Budget = spec.Budget.Std()
	allow := script.Allow{Files: spec.Allow.Files, Network: spec.Allow.Network, Goroutines: spec.Allow.Goroutines}
	if spec.Script == "" && (len(allow.Files) > 0 || allow.Network || allow.Goroutines) {
		return m, errors.New("allow only applies to scripts")
	}
	log := opts.Log.With("extension", spec.Name)
	switch {
	case spec.Script != "":
		path := spec.Script
		if !filepath.IsAbs(path) && opts.BaseDir != "" {
			path = filepath.Join(opts.BaseDir, path)
		}
		s, lerr := script.Load(script.Options{Name: spec.Name, Path: path, Points: points,
			Args: spec.InitArgs, Allow: allow, Workers: opts.ScriptWorkers, Log: log})
		if lerr != nil {
			return m, lerr
		}
		m.Extension = s
	case spec.Plugin != "":
		if opts.Plugin == nil {
			return m, errors.New("plugins are not available here")
		}
		m.Extension, err = opts.Plugin(opts.Context, spec, points)
	default:
		f, ok := opts.Builtins[spec.Builtin]
		if !ok {
			return m, fmt.Errorf("unknown builtin %q (known: %s)", spec.Builtin, strings.Join(names(opts.Builtins), ", "))
		}
		m.Extension, err = f(spec.Name, points, spec.InitArgs)
	}
	if err == nil && (m.Extension == nil || m.Extension.Name() != spec.Name) {
		err = fmt.Errorf("the extension was built under another name")
	}
	if err != nil && m.Extension != nil {
		if c, ok := m.Extension.(hooks.Closer); ok {
			c.Close()
		}
	}
	return m, err
}

// ParsePoints reads config point names, refusing duplicates.
func ParsePoints(names []string) ([]hooks.Point, error) {
	var ps []hooks.Point
	for _, n := range names {
		p, err := hooks.ParsePoint(n)
		if err != nil {
			return nil, err
		}
		if slices.Contains(ps, p) {
			return nil, fmt.Errorf("point %s listed twice", p)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func names(m map[string]Factory) []string {
	s := make([]string, 0, len(m))
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
