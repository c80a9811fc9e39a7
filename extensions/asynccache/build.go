package asynccache

import (
	"errors"
	"fmt"

	"github.com/hook6/hook6/hooks"
)

// FieldLister is implemented by sources that know which client fields
// their query uses (the placeholders of an LDAP filter or an URL): those
// fields key the cache unless key-fields says otherwise.
type FieldLister interface {
	Fields() []string
}

// ReadArgs reads the cache's init-args: ttl, negative-ttl, max-stale,
// serve-stale, size, workers, queue, query-timeout (Config) and
// key-fields, flag, found-key, links, prefixes, drop-early (Options).
func ReadArgs(points []hooks.Point, a *Args) (Config, Options) {
	cfg := Config{
		TTL:         a.Duration("ttl", DefaultTTL),
		NegativeTTL: a.Duration("negative-ttl", DefaultNegativeTTL),
		MaxStale:    a.Duration("max-stale", DefaultMaxStale),
		ServeStale:  a.Bool("serve-stale", false),
		Size:        a.Int("size", DefaultSize),
		Workers:     a.Int("workers", DefaultWorkers),
		Queue:       a.Int("queue", DefaultQueue),
		Timeout:     a.Duration("query-timeout", DefaultTimeout),
	}
	opt := Options{
		Points:    points,
		Fields:    a.List("key-fields"),
		Flag:      a.String("flag", DefaultFlag),
		FoundKey:  a.String("found-key", ""),
		Links:     a.List("links"),
		Prefixes:  a.List("prefixes"),
		DropEarly: a.Bool("drop-early", false),
	}
	return cfg, opt
}

// Build reads the cache's init-args from a, checks a (unknown keys
// included: read the source's keys from a first) and starts the
// extension in front of src. On error src is not closed.
func Build(name string, points []hooks.Point, a *Args, src Source) (*Extension, error) {
	cfg, opt := ReadArgs(points, a)
	if err := a.Err(); err != nil {
		return nil, fmt.Errorf("async cache %s: %w", name, err)
	}
	return Start(name, cfg, opt, src)
}

// Start starts the cache in front of src and returns the extension. The
// cache is keyed on opt.Fields, or on the source's fields when it is a
// FieldLister. On error src is not closed.
func Start(name string, cfg Config, opt Options, src Source) (*Extension, error) {
	if len(opt.Fields) == 0 {
		if fl, ok := src.(FieldLister); ok {
			opt.Fields = fl.Fields()
		}
	}
	if len(opt.Fields) == 0 {
		return nil, errors.New("async cache " + name + ": init-args key-fields is required (the source does not say which client fields it uses)")
	}
	cache, err := New(cfg, src)
	if err != nil {
		return nil, err
	}
	x, err := NewExtension(name, opt, cache, src)
	if err != nil {
		cache.Close()
		return nil, err
	}
	return x, nil
}
