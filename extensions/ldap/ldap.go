// Package ldap holds the LDAP built-ins: "ldap", the synchronous lookup of
// the reference's LDAP option (the client's entry is searched at
// post-packet-decode and its attributes put in the environment
// dictionary, where generate-lease finds the prefix or address), and
// "ldap-cache", the same lookup behind the async cache of
// extensions/asynccache so the directory never blocks a packet.
//
// Both read their settings from init-args; see docs/ldap.md.
package ldap

import (
	"context"
	"fmt"

	"github.com/hook6/hook6/extensions/asynccache"
	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/ldapsource"
)

// SourceConfig reads the directory settings from init-args: urls,
// start-tls, bind-dn, password-file, base-dn, scope, filter, attributes
// ("ldapAttr=env.key, …"), dial-timeout, timeout, pool-size, max-backoff,
// tls-ca-file, tls-server-name, tls-insecure-skip-verify.
func SourceConfig(a *asynccache.Args) ldapsource.Config {
	return ldapsource.Config{
		URLs:         a.List("urls"),
		StartTLS:     a.Bool("start-tls", false),
		BindDN:       a.String("bind-dn", ""),
		PasswordFile: a.String("password-file", ""),
		BaseDN:       a.String("base-dn", ""),
		Scope:        a.String("scope", "sub"),
		Filter:       a.String("filter", ""),
		Attributes:   a.Map("attributes"),
		DialTimeout:  a.Duration("dial-timeout", ldapsource.DefaultDialTimeout),
		Timeout:      a.Duration("timeout", ldapsource.DefaultTimeout),
		PoolSize:     a.Int("pool-size", ldapsource.DefaultPoolSize),
		MaxBackoff:   a.Duration("max-backoff", ldapsource.DefaultMaxBackoff),
		TLS: ldapsource.TLSConfig{
			CAFile:             a.String("tls-ca-file", ""),
			ServerName:         a.String("tls-server-name", ""),
			InsecureSkipVerify: a.Bool("tls-insecure-skip-verify", false),
		},
	}
}

// Sync looks the client up in the directory at its first point, waiting
// for the answer (bounded by the extension's time budget). It implements
// hooks.Extension and hooks.Closer.
type Sync struct {
	name     string
	points   []hooks.Point
	at       hooks.Point
	foundKey string
	src      *ldapsource.Source
}

// DefaultSyncPoints are the points of "ldap" when the config lists none.
var DefaultSyncPoints = []hooks.Point{hooks.PostPacketDecode}

// NewSync builds the "ldap" built-in from init-args (SourceConfig's keys
// and found-key, the env key set to "true" or "false" after a lookup).
func NewSync(name string, points []hooks.Point, args map[string]string) (*Sync, error) {
	if len(points) == 0 {
		points = DefaultSyncPoints
	}
	a := asynccache.NewArgs(args)
	cfg := SourceConfig(a)
	x := &Sync{name: name, points: points, foundKey: a.String("found-key", "")}
	if err := a.Err(); err != nil {
		return nil, fmt.Errorf("ldap %s: %w", name, err)
	}
	at, err := lookupPoint(points)
	if err != nil {
		return nil, fmt.Errorf("ldap %s: %w", name, err)
	}
	x.at = at
	if x.src, err = ldapsource.New(cfg); err != nil {
		return nil, fmt.Errorf("ldap %s: %w", name, err)
	}
	return x, nil
}

// lookupPoint returns the earliest point, which must come before
// check-lease-acceptable: the answer is for generate-lease.
func lookupPoint(points []hooks.Point) (hooks.Point, error) {
	at := points[0]
	for _, p := range points {
		if p > hooks.GenerateLease {
			return 0, fmt.Errorf("cannot run at %s: the lookup is for generate-lease", p)
		}
		at = min(at, p)
	}
	return at, nil
}

// Name implements hooks.Extension.
func (x *Sync) Name() string { return x.name }

// Points implements hooks.Extension.
func (x *Sync) Points() []hooks.Point { return x.points }

// Source returns the directory source, for its stats.
func (x *Sync) Source() *ldapsource.Source { return x.src }

// Stats returns the directory source's counters.
func (x *Sync) Stats() ldapsource.Stats { return x.src.Stats() }

// Counters returns the directory source's counters by name, for the
// daemon's stats and metrics.
func (x *Sync) Counters() map[string]uint64 {
	st := x.src.Stats()
	return map[string]uint64{
		"searches": st.Searches, "found": st.Found, "not_found": st.NotFound,
		"errors": st.Errors, "dials": st.Dials, "dial_errors": st.DialErrors,
	}
}

// Handle implements hooks.Extension: at the lookup point it searches the
// client's entry and sets the mapped env keys. A failed search is an
// error, so the extension's failure mode decides the packet's fate.
func (x *Sync) Handle(c *hooks.Context) error {
	if c.Point != x.at {
		return nil
	}
	ctx := c.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	fields := asynccache.ClientFields(c.Env, x.src.Fields())
	values, found, err := x.src.Lookup(ctx, fields)
	if err != nil {
		return fmt.Errorf("ldap %s: %w", x.name, err)
	}
	for k, v := range values {
		if err := c.Env.Set(k, v); err != nil {
			return fmt.Errorf("ldap %s: %w", x.name, err)
		}
	}
	if x.foundKey == "" {
		return nil
	}
	return c.Env.Set(x.foundKey, fmt.Sprint(found))
}

// Close closes the directory connections.
func (x *Sync) Close() error { return x.src.Close() }

// NewCached builds the "ldap-cache" built-in: the directory lookup behind
// the async cache. init-args are SourceConfig's keys plus the cache's (see
// asynccache.Build); the cache is keyed on the filter's fields unless
// key-fields says otherwise.
func NewCached(name string, points []hooks.Point, args map[string]string) (*asynccache.Extension, error) {
	a := asynccache.NewArgs(args)
	srcCfg := SourceConfig(a)
	cfg, opt := asynccache.ReadArgs(points, a)
	if err := a.Err(); err != nil {
		return nil, fmt.Errorf("ldap-cache %s: %w", name, err)
	}
	src, err := ldapsource.New(srcCfg)
	if err != nil {
		return nil, fmt.Errorf("ldap-cache %s: %w", name, err)
	}
	x, err := asynccache.Start(name, cfg, opt, src)
	if err != nil {
		src.Close()
		return nil, err
	}
	return x, nil
}

// Builtin is NewSync as a registry factory (extensions.Factory): the
// "ldap" built-in.
func Builtin(name string, points []hooks.Point, args map[string]string) (hooks.Extension, error) {
	x, err := NewSync(name, points, args)
	if err != nil {
		return nil, err
	}
	return x, nil
}

// CachedBuiltin is NewCached as a registry factory: the "ldap-cache"
// built-in.
func CachedBuiltin(name string, points []hooks.Point, args map[string]string) (hooks.Extension, error) {
	x, err := NewCached(name, points, args)
	if err != nil {
		return nil, err
	}
	return x, nil
}
