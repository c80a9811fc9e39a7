package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// Ctl runs hook6ctl against one control socket.
type Ctl struct {
	Bin    string
	Socket string
}

// Run runs `hook6ctl --socket S args...` and returns its standard output;
// the error carries standard error.
func (c *Ctl) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.Bin, append([]string{"--socket", c.Socket}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("hook6ctl %s: %w: %s%s", strings.Join(args, " "), err, stderr.String(), out)
	}
	return out, nil
}

// Lease is one lease as `hook6ctl lease list -o json` shows it. The fields
// the tests need are extracted; Raw keeps the whole object.
type Lease struct {
	Prefix netip.Prefix // the address as a /128, or the delegated prefix
	Kind   string       // "na" or "pd"
	State  string       // "leased", "released", "declined", "expired"
	DUID   string
	IAID   uint32
	Link   string
	Raw    map[string]any
}

// Leases runs `hook6ctl lease list -o json` with extra filter arguments.
func (c *Ctl) Leases(ctx context.Context, args ...string) ([]Lease, error) {
	out, err := c.Run(ctx, append([]string{"lease", "list", "-o", "json"}, args...)...)
	if err != nil {
		return nil, err
	}
	return ParseLeases(out)
}

// ParseLeases decodes a JSON lease list: an array of lease objects, or an
// object holding the array under "leases".
func ParseLeases(b []byte) ([]Lease, error) {
	var raws []map[string]any
	if err := json.Unmarshal(b, &raws); err != nil {
		var wrapped map[string]json.RawMessage
		if err2 := json.Unmarshal(b, &wrapped); err2 != nil {
			return nil, fmt.Errorf("parse lease list %q: %w", truncate(b), err)
		}
		inner, ok := field(anyMap(wrapped), "leases")
		if !ok {
			return nil, fmt.Errorf("parse lease list %q: no leases array", truncate(b))
		}
		if err := json.Unmarshal(inner.(json.RawMessage), &raws); err != nil {
			return nil, fmt.Errorf("parse lease list %q: %w", truncate(b), err)
		}
	}
	ls := make([]Lease, 0, len(raws))
	for _, r := range raws {
		l, err := parseLease(r)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func anyMap(m map[string]json.RawMessage) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// field looks a key up case-insensitively and ignoring '-' and '_'.
func field(m map[string]any, names ...string) (any, bool) {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
	}
	for _, n := range names {
		for k, v := range m {
			if norm(k) == norm(n) {
				return v, true
			}
		}
	}
	return nil, false
}

func parseLease(r map[string]any) (Lease, error) {
	l := Lease{Raw: r}
	p, ok := field(r, "prefix", "address")
	s, isStr := p.(string)
	if !ok || !isStr {
		return l, fmt.Errorf("lease %v has no prefix or address", r)
	}
	if !strings.Contains(s, "/") {
		s += "/128"
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return l, fmt.Errorf("lease prefix %q: %w", s, err)
	}
	l.Prefix = pfx
	l.Kind = enumString(r, []string{"kind", "type"}, map[float64]string{1: "na", 2: "pd"})
	l.State = enumString(r, []string{"state"}, map[float64]string{1: "leased", 2: "released", 3: "declined", 4: "expired"})
	if v, ok := field(r, "duid", "client-duid", "client-id"); ok {
		l.DUID = fmt.Sprint(v)
	}
	if v, ok := field(r, "iaid"); ok {
		switch x := v.(type) {
		case float64:
			l.IAID = uint32(x)
		case string:
			n, _ := strconv.ParseUint(x, 0, 32)
			l.IAID = uint32(n)
		}
	}
	if v, ok := field(r, "link"); ok {
		l.Link = fmt.Sprint(v)
	}
	return l, nil
}

// enumString reads a field that is either a name or a number of enum.
func enumString(r map[string]any, keys []string, enum map[float64]string) string {
	v, ok := field(r, keys...)
	if !ok {
		return ""
	}
	switch x := v.(type) {
	case float64:
		return enum[x]
	case string:
		return strings.ToLower(x)
	}
	return fmt.Sprint(v)
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// Stats are the counters of `hook6ctl stats -o json`, flattened to dotted
// keys (nested objects joined with '.').
type Stats map[string]float64

// Stats runs `hook6ctl stats -o json`.
func (c *Ctl) Stats(ctx context.Context) (Stats, error) {
	out, err := c.Run(ctx, "stats", "-o", "json")
	if err != nil {
		return nil, err
	}
	return ParseStats(out)
}

// ParseStats flattens a JSON object of counters.
func ParseStats(b []byte) (Stats, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("parse stats %q: %w", truncate(b), err)
	}
	s := Stats{}
	flatten("", v, s)
	return s, nil
}

func flatten(prefix string, v any, into Stats) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(join(k), e, into)
		}
	case []any:
		for i, e := range x {
			flatten(join(strconv.Itoa(i)), e, into)
		}
	case float64:
		into[prefix] = x
	}
}

// Keys returns the counter names, sorted.
func (s Stats) Keys() []string {
	ks := make([]string, 0, len(s))
	for k := range s {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Sum adds the counters whose name contains every one of parts
// (case-insensitive).
func (s Stats) Sum(parts ...string) float64 {
	var t float64
	for k, v := range s {
		lk := strings.ToLower(k)
		all := true
		for _, p := range parts {
			if !strings.Contains(lk, strings.ToLower(p)) {
				all = false
				break
			}
		}
		if all {
			t += v
		}
	}
	return t
}

// ParseObject decodes a JSON object answer (status, reload, delete).
func ParseObject(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse %q: %w", truncate(b), err)
	}
	return m, nil
}
