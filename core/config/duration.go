package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a span of time written in the configuration as "30s", "1h",
// "1h30m", "7d", "1w", a plain integer (seconds) or "infinity". Infinity is
// DHCPv6's 0xffffffff seconds, the longest lifetime the protocol carries;
// finite durations longer than that are refused.
type Duration time.Duration

// Infinity is the DHCPv6 "infinite" lifetime: 0xffffffff seconds.
const Infinity = Duration(math.MaxUint32 * time.Second)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// units the configuration accepts, longest suffix first so "ms" is not read
// as "m" followed by garbage.
var durationUnits = []struct {
	suffix string
	unit   time.Duration
}{
	{"ms", time.Millisecond}, {"us", time.Microsecond}, {"µs", time.Microsecond},
	{"ns", time.Nanosecond}, {"w", week}, {"d", day}, {"h", time.Hour},
	{"m", time.Minute}, {"s", time.Second},
}

// ParseDuration reads a configuration duration (see Duration).
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return 0, errors.New("empty duration")
	case s == "infinity":
		return Infinity, nil
	case strings.HasPrefix(s, "-"):
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	if isDigits(s) {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n > math.MaxUint32 {
			return 0, fmt.Errorf("duration %q is longer than %d seconds; use infinity", s, uint32(math.MaxUint32))
		}
		return Duration(time.Duration(n) * time.Second), nil
	}
	var total time.Duration
	rest := s
	for rest != "" {
		num := leadingNumber(rest)
		if num == "" {
			return 0, fmt.Errorf("invalid duration %q: want a number followed by w, d, h, m, s or ms (e.g. 30s, 1h, 7d), seconds, or infinity", s)
		}
		rest = rest[len(num):]
		unit, n := unitPrefix(rest)
		if n == 0 {
			return 0, fmt.Errorf("invalid duration %q: missing or unknown unit after %s (use w, d, h, m, s, ms)", s, num)
		}
		rest = rest[n:]
		part, ok := scaleUnit(num, unit)
		if !ok || part > time.Duration(Infinity)-total {
			return 0, fmt.Errorf("duration %q is longer than %d seconds; use infinity", s, uint32(math.MaxUint32))
		}
		total += part
	}
	return Duration(total), nil
}

// scaleUnit gives num (digits, maybe with a fraction) times unit, false when
// that is longer than Infinity.
func scaleUnit(num string, unit time.Duration) (time.Duration, bool) {
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || n > uint64(Infinity/Duration(unit)) {
			return 0, false
		}
		return time.Duration(n) * unit, true
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*float64(unit) > float64(Infinity) {
		return 0, false
	}
	return time.Duration(f * float64(unit)), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// leadingNumber gives the "12" or "1.5" at the start of s.
func leadingNumber(s string) string {
	i, dot := 0, false
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' && !dot) {
		dot = dot || s[i] == '.'
		i++
	}
	if i == 1 && s[0] == '.' {
		return ""
	}
	return s[:i]
}

func unitPrefix(s string) (time.Duration, int) {
	for _, u := range durationUnits {
		if strings.HasPrefix(s, u.suffix) {
			return u.unit, len(u.suffix)
		}
	}
	return 0, 0
}

// Std gives the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// IsInfinite tells whether d is the DHCPv6 infinite lifetime.
func (d Duration) IsInfinite() bool { return d >= Infinity }

// Seconds32 gives d as the 32-bit seconds value DHCPv6 puts on the wire:
// 0xffffffff for infinity, whole seconds (rounded down) otherwise.
func (d Duration) Seconds32() uint32 {
	if d.IsInfinite() {
		return math.MaxUint32
	}
	if d < 0 {
		return 0
	}
	return uint32(time.Duration(d) / time.Second)
}

// Scale multiplies d by f (e.g. 0.5 for a default T1); infinity stays
// infinity.
func (d Duration) Scale(f float64) Duration {
	if d.IsInfinite() {
		return Infinity
	}
	return Duration(float64(d) * f)
}

// String writes d the way the configuration accepts it: "infinity",
// "7d", "1h30m", "50ms".
func (d Duration) String() string {
	if d.IsInfinite() {
		return "infinity"
	}
	if d == 0 {
		return "0s"
	}
	td := time.Duration(d)
	if td%time.Second != 0 {
		return td.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := td / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			td -= n * u.unit
		}
	}
	return b.String()
}

// MarshalText writes d as String does, so JSON shows "7d", not nanoseconds.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads what ParseDuration reads.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// HexBytes is binary data (a DUID) written as colon-separated hex octets
// ("00:01:00:01:2b:3c:4d:5e") or as plain hex ("000100012b3c4d5e").
type HexBytes []byte

// ParseHexBytes reads the two forms HexBytes accepts.
func ParseHexBytes(s string) (HexBytes, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty hex string")
	}
	plain := s
	if strings.Contains(s, ":") {
		parts := strings.Split(s, ":")
		for _, p := range parts {
			if len(p) != 2 {
				return nil, fmt.Errorf("invalid hex %q: colon-separated form needs two hex digits per octet", s)
			}
		}
		plain = strings.Join(parts, "")
	}
	if len(plain)%2 != 0 {
		return nil, fmt.Errorf("invalid hex %q: odd number of hex digits", s)
	}
	b, err := hex.DecodeString(plain)
	if err != nil {
		return nil, fmt.Errorf("invalid hex %q: not hex digits", s)
	}
	return b, nil
}

// String writes h as colon-separated lower-case octets.
func (h HexBytes) String() string {
	if len(h) == 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(len(h) * 3)
	for i, c := range h {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hex.EncodeToString([]byte{c}))
	}
	return b.String()
}

// MarshalText writes h as String does.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads what ParseHexBytes reads.
func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := ParseHexBytes(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}
