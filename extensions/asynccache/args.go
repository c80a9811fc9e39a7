package asynccache

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Args reads an extension's init-args (string keys and values) with
// types and defaults, remembering every key read so Err can report the
// keys nobody knows: init-args are as strict as the rest of the config.
type Args struct {
	m    map[string]string
	used map[string]bool
	errs []error
}

// NewArgs wraps init-args.
func NewArgs(m map[string]string) *Args {
	return &Args{m: m, used: make(map[string]bool, len(m))}
}

func (a *Args) get(k string) (string, bool) {
	a.used[k] = true
	v, ok := a.m[k]
	return strings.TrimSpace(v), ok && strings.TrimSpace(v) != ""
}

func (a *Args) fail(k string, err error) {
	a.errs = append(a.errs, fmt.Errorf("init-args %s: %w", k, err))
}

// String returns the value of k, or def.
func (a *Args) String(k, def string) string {
	if v, ok := a.get(k); ok {
		return v
	}
	return def
}

// Duration reads a Go duration ("90s", "5m"), or def.
func (a *Args) Duration(k string, def time.Duration) time.Duration {
	v, ok := a.get(k)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		a.fail(k, fmt.Errorf("%q is not a positive duration like 30s or 5m", v))
		return def
	}
	return d
}

// Int reads a non-negative integer, or def.
func (a *Args) Int(k string, def int) int {
	v, ok := a.get(k)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		a.fail(k, fmt.Errorf("%q is not a non-negative integer", v))
		return def
	}
	return n
}

// Bool reads true/false (also yes/no, on/off, 1/0), or def.
func (a *Args) Bool(k string, def bool) bool {
	v, ok := a.get(k)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true
	case "false", "no", "off", "0":
		return false
	}
	a.fail(k, fmt.Errorf("%q is not true or false", v))
	return def
}

// List reads a list separated by commas or spaces.
func (a *Args) List(k string) []string {
	v, ok := a.get(k)
	if !ok {
		return nil
	}
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// Map reads "a=b, c=d" (commas or newlines between pairs).
func (a *Args) Map(k string) map[string]string {
	v, ok := a.get(k)
	if !ok {
		return nil
	}
	out := make(map[string]string)
	for _, pair := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' }) {
		name, val, found := strings.Cut(pair, "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !found || name == "" || val == "" {
			a.fail(k, fmt.Errorf("%q is not name=value", strings.TrimSpace(pair)))
			continue
		}
		out[name] = val
	}
	return out
}

// Err reports the values that did not parse and the keys never read.
func (a *Args) Err() error {
	var unknown []string
	for k := range a.m {
		if !a.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	errs := append([]error(nil), a.errs...)
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("init-args: unknown key %q", k))
	}
	return errors.Join(errs...)
}
