package pkg

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a semantic version, MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD].
type Version struct {
	Major, Minor, Patch uint64
	Pre                 []string // dot-separated pre-release identifiers
}

// ParseVersion parses a semantic version ("1.4.0", "2.0.0-rc.1").
func ParseVersion(s string) (Version, error) {
	var v Version
	core, _, _ := strings.Cut(s, "+")
	core, pre, hasPre := strings.Cut(core, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("version %q: want MAJOR.MINOR.PATCH", s)
	}
	nums := [3]*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || (len(p) > 1 && p[0] == '0') {
			return v, fmt.Errorf("version %q: %q is not a number", s, p)
		}
		*nums[i] = n
	}
	if hasPre {
		v.Pre = strings.Split(pre, ".")
		for _, id := range v.Pre {
			if id == "" || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
				return v, fmt.Errorf("version %q: bad pre-release %q", s, pre)
			}
		}
	}
	return v, nil
}

// Compare returns -1, 0 or 1 as v is older than, equal to or newer than w,
// by semantic-versioning precedence (a pre-release is older than its
// release).
func (v Version) Compare(w Version) int {
	for _, d := range [3][2]uint64{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}} {
		if d[0] != d[1] {
			return cmpUint(d[0], d[1])
		}
	}
	switch {
	case len(v.Pre) == 0 && len(w.Pre) == 0:
		return 0
	case len(v.Pre) == 0:
		return 1
	case len(w.Pre) == 0:
		return -1
	}
	for i := 0; i < len(v.Pre) && i < len(w.Pre); i++ {
		if c := comparePre(v.Pre[i], w.Pre[i]); c != 0 {
			return c
		}
	}
	return cmpUint(uint64(len(v.Pre)), uint64(len(w.Pre)))
}

func comparePre(a, b string) int {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return cmpUint(na, nb)
	case errA == nil: // numeric identifiers are older than alphanumeric ones
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ParseRef splits a config reference "name" or "name@version".
func ParseRef(ref string) (name, version string, err error) {
	name, version, hasVersion := strings.Cut(ref, "@")
	if err := ValidName(name); err != nil {
		return "", "", err
	}
	if hasVersion {
		if _, err := ParseVersion(version); err != nil {
			return "", "", fmt.Errorf("plugin %q: %w", ref, err)
		}
	}
	return name, version, nil
}
