package extensions

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hook6/hook6/extensions/asynccache/httpsource"
	ldapext "github.com/hook6/hook6/extensions/ldap"
	"github.com/hook6/hook6/hooks"
)

// Factory builds one instance of a built-in extension from its config:
// the name, the points listed (empty: the built-in's default points) and
// the init-args. An unknown init-arg is an error.
type Factory func(name string, points []hooks.Point, args map[string]string) (hooks.Extension, error)

// Builtins returns a new registry of the built-in extensions by the name
// used in the config (`builtin: NAME`). Callers may add their own
// factories to the map they get.
func Builtins() map[string]Factory {
	return map[string]Factory{
		"drop-flag":  NewDropFlag,
		"preference": NewPreference,
		"env-lease":  NewEnvLease,
		"ldap":       ldapext.Builtin,
		"ldap-cache": ldapext.CachedBuiltin,
		"http-cache": httpsource.Builtin,
	}
}

// base holds what every built-in has: its name and points. Built-ins are
// trusted and fast: they run inline in the packet's goroutine.
type base struct {
	name   string
	points []hooks.Point
}

func (b *base) Name() string          { return b.name }
func (b *base) Points() []hooks.Point { return slices.Clone(b.points) }

// choosePoints returns points, or def when none are listed; every point
// must be in allowed.
func choosePoints(kind string, points, def, allowed []hooks.Point) ([]hooks.Point, error) {
	if len(points) == 0 {
		return slices.Clone(def), nil
	}
	for _, p := range points {
		if !slices.Contains(allowed, p) {
			return nil, fmt.Errorf("%s cannot run at %s (allowed: %s)", kind, p, pointList(allowed))
		}
	}
	return slices.Clone(points), nil
}

func pointList(ps []hooks.Point) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// args reads init-args, remembering which were read so unknown ones can
// be reported.
type args struct {
	kind string
	m    map[string]string
	used map[string]bool
}

func newArgs(kind string, m map[string]string) *args {
	return &args{kind: kind, m: m, used: map[string]bool{}}
}

func (a *args) get(k string) (string, bool) {
	a.used[k] = true
	v, ok := a.m[k]
	return v, ok
}

func (a *args) required(k string) (string, error) {
	v, ok := a.get(k)
	if !ok || v == "" {
		return "", fmt.Errorf("%s: init-arg %q is required", a.kind, k)
	}
	return v, nil
}

// unknown reports init-args that were never read.
func (a *args) unknown() error {
	var extra []string
	for k := range a.m {
		if !a.used[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	sort.Strings(extra)
	return fmt.Errorf("%s: unknown init-args %s", a.kind, strings.Join(extra, ", "))
}

// dropPoints lists the points at which drop is allowed.
var dropPoints = []hooks.Point{hooks.PostPacketDecode, hooks.PreClientLookup, hooks.PostClientLookup,
	hooks.CheckLeaseAcceptable, hooks.PrePacketEncode, hooks.PostPacketEncode}

// DropFlag is the "drop-flag" built-in: it turns a flag set in the
// environment (by generate-lease, which may not drop) into drop. init-args:
// flag (required), the env key; the packet is dropped when it holds a true
// value ("true", "1", "yes", "on"). Default point: pre-packet-encode.
type DropFlag struct {
	base
	flag string
}

// NewDropFlag builds a drop-flag instance.
func NewDropFlag(name string, points []hooks.Point, initArgs map[string]string) (hooks.Extension, error) {
	a := newArgs("drop-flag", initArgs)
	flag, err := a.required("flag")
	if err != nil {
		return nil, err
	}
	if err := a.unknown(); err != nil {
		return nil, err
	}
	ps, err := choosePoints("drop-flag", points, []hooks.Point{hooks.PrePacketEncode}, dropPoints)
	if err != nil {
		return nil, err
	}
	return &DropFlag{base: base{name, ps}, flag: flag}, nil
}

// Handle drops the packet when the flag is set.
func (d *DropFlag) Handle(c *hooks.Context) error {
	if c.Env.IsTrue(d.flag) {
		return c.Drop()
	}
	return nil
}

// HandleWithin runs inline: the built-in is its own budget.
func (d *DropFlag) HandleWithin(c *hooks.Context, _ time.Duration) error { return d.Handle(c) }

// Preference is the "preference" built-in: it sets the Preference option
// of the answer at pre-packet-encode. init-args: value (required, 0–255);
// when-env (optional), an env key: only when it is set, and equals the
// optional equals (else holds a true value), is the preference set.
type Preference struct {
	base
	value   uint8
	whenEnv string
	equals  string
	hasEq   bool
}

// NewPreference builds a preference instance.
func NewPreference(name string, points []hooks.Point, initArgs map[string]string) (hooks.Extension, error) {
	a := newArgs("preference", initArgs)
	s, err := a.required("value")
	if err != nil {
		return nil, err
	}
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return nil, fmt.Errorf("preference: init-arg value %q: want 0–255", s)
	}
	p := &Preference{value: uint8(v)}
	p.whenEnv, _ = a.get("when-env")
	p.equals, p.hasEq = a.get("equals")
	if p.hasEq && p.whenEnv == "" {
		return nil, fmt.Errorf("preference: init-arg equals needs when-env")
	}
	if err := a.unknown(); err != nil {
		return nil, err
	}
	pe := []hooks.Point{hooks.PrePacketEncode}
	if p.points, err = choosePoints("preference", points, pe, pe); err != nil {
		return nil, err
	}
	p.name = name
	return p, nil
}

// Handle sets the preference when the condition holds.
func (p *Preference) Handle(c *hooks.Context) error {
	if p.whenEnv != "" {
		if p.hasEq {
			if v, ok := c.Env.Get(p.whenEnv); !ok || v != p.equals {
				return nil
			}
		} else if !c.Env.IsTrue(p.whenEnv) {
			return nil
		}
	}
	if c.Response == nil {
		return fmt.Errorf("no response to set the preference on at %s", c.Point)
	}
	c.Response.SetPreference(p.value)
	return nil
}

// HandleWithin runs inline: the built-in is its own budget.
func (p *Preference) HandleWithin(c *hooks.Context, _ time.Duration) error { return p.Handle(c) }

// EnvLease is the "env-lease" built-in: at generate-lease it gives the
// lease held by an env key (an address, or a prefix for IA_PD), set by an
// earlier extension (an LDAP lookup, a script). init-args: key (required);
// pd-key (optional) read instead of key for IA_PD; skip-missing ("true":
// when the key is missing or empty, set skip-lease so no other algorithm
// gives a lease; default: let the next allocation algorithm choose). A
// value outside the prefix being allocated from is refused (the call fails
// and is logged). Also attached at check-lease-acceptable, it refuses a
// lease (new or held) other than the one the env key names, so a changed
// directory entry replaces the client's lease at its next renewal.
type EnvLease struct {
	base
	key, pdKey  string
	skipMissing bool
}

// NewEnvLease builds an env-lease instance.
func NewEnvLease(name string, points []hooks.Point, initArgs map[string]string) (hooks.Extension, error) {
	a := newArgs("env-lease", initArgs)
	key, err := a.required("key")
	if err != nil {
		return nil, err
	}
	e := &EnvLease{key: key}
	e.pdKey, _ = a.get("pd-key")
	if s, ok := a.get("skip-missing"); ok {
		if e.skipMissing, err = strconv.ParseBool(s); err != nil {
			return nil, fmt.Errorf("env-lease: init-arg skip-missing %q: want true or false", s)
		}
	}
	if err := a.unknown(); err != nil {
		return nil, err
	}
	gl := []hooks.Point{hooks.GenerateLease}
	allowed := []hooks.Point{hooks.GenerateLease, hooks.CheckLeaseAcceptable}
	if e.points, err = choosePoints("env-lease", points, gl, allowed); err != nil {
		return nil, err
	}
	e.name = name
	return e, nil
}

// Handle gives the lease from the env key.
func (e *EnvLease) Handle(c *hooks.Context) error {
	if c.Allocation == nil {
		return fmt.Errorf("no allocation at %s", c.Point)
	}
	key := e.key
	if c.Allocation.IA.Type == hooks.IAPD && e.pdKey != "" {
		key = e.pdKey
	}
	v := strings.TrimSpace(c.Env.Value(key))
	if c.Point == hooks.CheckLeaseAcceptable {
		if v != "" && !sameLease(v, c.Allocation.Candidate) {
			c.Allocation.Acceptable = false
		}
		return nil
	}
	if v == "" {
		if e.skipMissing {
			return c.SkipLease()
		}
		return nil
	}
	return c.SetLeaseString(v)
}

// sameLease reports whether v (an address or prefix) names p.
func sameLease(v string, p netip.Prefix) bool {
	if q, err := netip.ParsePrefix(v); err == nil {
		return q.Masked() == p
	}
	a, err := netip.ParseAddr(v)
	return err == nil && netip.PrefixFrom(a, 128) == p
}

// HandleWithin runs inline: the built-in is its own budget.
func (e *EnvLease) HandleWithin(c *hooks.Context, _ time.Duration) error { return e.Handle(c) }
