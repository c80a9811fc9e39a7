package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults the checks fill in.
const (
	DefaultStateDir = "/var/lib/hook6"
	DefaultListen   = "[::]:547"
	// DefaultWorkers is how many packets are handled at once. Most of a
	// worker's time is spent waiting for its lease commit's fsync, and
	// the store batches the commits of every waiting worker into one: so
	// many workers, not one per CPU. While the disk stalls (a flush of
	// 100–200 ms behind a checkpoint's writes) every Request holds its
	// worker and Solicits queue behind them: with 256 workers hook6
	// dropped 0.8–1.5% of its packets as overload at 16,000 exchanges/s,
	// with 1024 none up to 20,000/s. An idle worker costs its goroutine's
	// stack; a busy one the packet it holds.
	DefaultWorkers           = 1024
	DefaultPreferredLifetime = Duration(time.Hour)
	DefaultValidLifetime     = Duration(2 * time.Hour)
	DefaultBudget            = Duration(50 * time.Millisecond)
	MaxBudget                = Duration(10 * time.Second)
	DefaultFailoverPort      = "647"
	DefaultFailoverName      = "default"
	DefaultMCLT              = Duration(time.Hour)
	DefaultMaxUnacked        = 256
	DefaultKeepalive         = Duration(10 * time.Second)
	// MinInformationRefresh is RFC 8415's IRT_MINIMUM.
	MinInformationRefresh = Duration(600 * time.Second)
)

// DefaultAlgorithms gives the allocation algorithms a prefix of that
// dhcp-type uses when it lists none.
func DefaultAlgorithms(dhcpType string) []string {
	if dhcpType == TypePrefixDelegation {
		return []string{AlgoReservation, AlgoClientRequest, AlgoBestFit}
	}
	return []string{AlgoReservation, AlgoClientRequest, AlgoRandom}
}

var algorithms = []string{AlgoReservation, AlgoClientRequest, AlgoExtension,
	AlgoInterfaceIdentifier, AlgoRandom, AlgoBestFit}

// checker fills in defaults and checks what decoding cannot: ranges,
// references between sections, uniqueness. It reports into the decoder,
// whose line table places each problem on the line of its field.
type checker struct {
	d   *decoder
	c   *Config
	dir string // directory of the config file, for relative paths
}

// check fills in c's defaults and validates it; problems go to d.errs.
func check(c *Config, d *decoder) {
	k := &checker{d: d, c: c, dir: filepath.Dir(d.file)}
	k.server()
	k.policies()
	k.extensions()
	k.links()
	k.prefixes()
	k.overlaps()
	k.reservations()
	k.failover()
}

// errf reports a problem with the field at path, on the line of that
// field (or of the nearest enclosing one written in the file), unless
// decoding already reported a problem with it.
func (k *checker) errf(path, format string, args ...any) {
	for p := path; ; p = parent(p) {
		if k.d.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	k.d.report(path, k.line(path), format, args...)
}

func (k *checker) line(path string) int {
	for p := path; ; p = parent(p) {
		if l, ok := k.d.lines[p]; ok {
			return l
		}
		if p == "" {
			return 0
		}
	}
}

// set tells whether the file gives a (non-null) value for path.
func (k *checker) set(path string) bool { return k.d.set[path] }

// parent gives the path of the field enclosing path's: "prefixes[1]" for
// "prefixes[1].range", "prefixes" for "prefixes[1]".
func parent(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// resolve makes a relative path relative to the config file's directory.
func (k *checker) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(k.dir, p)
}

// name checks a name and that no other of its kind (seen) has it. It
// tells whether the name is new.
func (k *checker) name(path, name string, seen map[string]string, kind string) bool {
	if name == "" {
		k.errf(path, "required")
		return false
	}
	if err := validName(name); err != nil {
		k.errf(path, "%v", err)
	}
	if first, dup := seen[name]; dup {
		k.errf(path, "%s name %q is already used by %s", kind, name, first)
		return false
	}
	seen[name] = parent(path)
	return true
}

func validName(s string) error {
	if len(s) > 64 {
		return fmt.Errorf("name %q is longer than 64 characters", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("invalid name %q: use letters, digits, '.', '_' and '-'", s)
		}
	}
	return nil
}

func (k *checker) server() {
	s := &k.c.Server
	seen := map[string]bool{}
	for i, name := range s.Interfaces {
		p := index("server.interfaces", i)
		switch {
		case strings.TrimSpace(name) == "":
			k.errf(p, "empty interface name")
		case seen[name]:
			k.errf(p, "interface %q is listed twice", name)
		}
		seen[name] = true
	}
	if s.StateDir == "" {
		s.StateDir = DefaultStateDir
	}
	if s.Listen == "" {
		s.Listen = DefaultListen
	} else if err := checkHostPort(s.Listen, true); err != nil {
		k.errf("server.listen", "%v", err)
	}
	switch {
	case s.Workers < 0:
		k.errf("server.workers", "must be positive (or 0 for the default, 256)")
	case s.Workers == 0:
		s.Workers = DefaultWorkers
	}
	if k.set("server.server-duid") {
		if err := checkDUID(s.ServerDUID); err != nil {
			k.errf("server.server-duid", "%v", err)
		}
	}

	if k.c.Control.Socket == "" {
		k.c.Control.Socket = filepath.Join(s.StateDir, "control.sock")
	}
	if l := k.c.Metrics.Listen; l != "" {
		if err := checkHostPort(l, false); err != nil {
			k.errf("metrics.listen", "%v", err)
		}
	}
	if k.c.Plugins.Dir == "" {
		k.c.Plugins.Dir = filepath.Join(s.StateDir, "plugins")
	}
	k.oneOf("log.level", &k.c.Log.Level, "info", "debug", "info", "warn", "error")
	k.oneOf("log.format", &k.c.Log.Format, "text", "text", "json")
}

// oneOf defaults *v to def when empty, else checks it is one of allowed.
func (k *checker) oneOf(path string, v *string, def string, allowed ...string) {
	if *v == "" {
		*v = def
		return
	}
	if !slices.Contains(allowed, *v) {
		k.errf(path, "%q is not one of %s", *v, strings.Join(allowed, ", "))
	}
}

// checkDUID checks a DUID's length: a 2-octet type and at most 128 more
// (RFC 8415 section 11.1).
func checkDUID(b HexBytes) error {
	if len(b) < 3 || len(b) > 130 {
		return fmt.Errorf("a DUID is 3 to 130 octets long, this one is %d", len(b))
	}
	return nil
}

// checkHostPort checks a "host:port" address; ipOnly wants an IP literal
// (or nothing) for the host.
func checkHostPort(s string, ipOnly bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port, e.g. \"[::]:547\"", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("invalid port %q in %q", port, s)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil && ipOnly {
		return fmt.Errorf("invalid address %q: the host must be an IP address", s)
	}
	return nil
}

func (k *checker) policies() {
	if k.c.Policies == nil {
		k.c.Policies = map[string]*Policy{}
	}
	if k.c.Policies[DefaultPolicy] == nil {
		k.c.Policies[DefaultPolicy] = &Policy{}
	}
	names := make([]string, 0, len(k.c.Policies))
	for name := range k.c.Policies {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := join("policies", name)
		if err := validName(name); err != nil {
			k.errf(p, "%v", err)
		}
		k.policy(p, k.c.Policies[name])
	}
}

func (k *checker) policy(path string, pol *Policy) {
	pref, valid := path+".preferred-lifetime", path+".valid-lifetime"
	if !k.set(pref) {
		pol.PreferredLifetime = DefaultPreferredLifetime
	}
	if !k.set(valid) {
		pol.ValidLifetime = DefaultValidLifetime
	}
	lifetimesOK := false
	switch {
	case pol.ValidLifetime == 0:
		k.errf(valid, "must be longer than 0")
	case pol.PreferredLifetime > pol.ValidLifetime && k.set(valid):
		k.errf(valid, "%s is shorter than preferred-lifetime %s", pol.ValidLifetime, pol.PreferredLifetime)
	case pol.PreferredLifetime > pol.ValidLifetime:
		k.errf(pref, "%s is longer than valid-lifetime %s (the default)", pol.PreferredLifetime, pol.ValidLifetime)
	default:
		lifetimesOK = true
	}
	k.renewalTimes(path, pol, lifetimesOK)
	if pol.MaxLeasesPerBinding < 0 {
		k.errf(path+".max-leases-per-binding", "must be 0 (no limit) or more")
	}
	k.options(path+".options", &pol.Options)
}

// renewalTimes defaults T1 and T2 (0.5 and 0.8 of the preferred lifetime,
// kept in order with whichever one is given) and checks T1 ≤ T2 ≤ valid
// when the lifetimes themselves are sound.
func (k *checker) renewalTimes(path string, pol *Policy, check bool) {
	t1p, t2p := path+".t1", path+".t2"
	switch {
	case pol.T1 == nil && pol.T2 == nil:
		t1, t2 := pol.PreferredLifetime.Scale(0.5), pol.PreferredLifetime.Scale(0.8)
		pol.T1, pol.T2 = &t1, &t2
	case pol.T2 == nil:
		t2 := max(pol.PreferredLifetime.Scale(0.8), *pol.T1)
		pol.T2 = &t2
	case pol.T1 == nil:
		t1 := min(pol.PreferredLifetime.Scale(0.5), *pol.T2)
		pol.T1 = &t1
	}
	t1, t2, valid := *pol.T1, *pol.T2, pol.ValidLifetime
	switch {
	case !check:
	case t1 > t2:
		k.errf(t2p, "%s is shorter than t1 %s", t2, t1)
	case t1 > valid && !k.set(t2p):
		k.errf(t1p, "%s is longer than valid-lifetime %s", t1, valid)
	case t2 > valid:
		k.errf(t2p, "%s is longer than valid-lifetime %s", t2, valid)
	}
}

func (k *checker) options(path string, o *PolicyOptions) {
	if o.Preference != nil && (*o.Preference < 0 || *o.Preference > 255) {
		k.errf(path+".preference", "%d is not between 0 and 255", *o.Preference)
	}
	k.servers(path+".dns-servers", o.DNSServers)
	k.servers(path+".sntp-servers", o.SNTPServers)
	for i, dom := range o.DomainSearch {
		if err := checkDomain(dom); err != nil {
			k.errf(index(path+".domain-search", i), "%v", err)
		}
	}
	if t := o.InformationRefreshTime; t != nil && *t < MinInformationRefresh {
		k.errf(path+".information-refresh-time", "%s is shorter than the minimum %s (RFC 8415 IRT_MINIMUM)", *t, MinInformationRefresh)
	}
}

func (k *checker) servers(path string, addrs []netip.Addr) {
	for i, a := range addrs {
		if a.IsValid() && (a.IsUnspecified() || a.IsMulticast()) {
			k.errf(index(path, i), "%s cannot be a server address", a)
		}
	}
}

// checkDomain checks a domain name's length and characters.
func checkDomain(s string) error {
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("invalid domain name %q", s)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("invalid domain name %q: bad label %q", s, label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("invalid domain name %q: bad character %q", s, r)
			}
		}
	}
	return nil
}

// hasGenerateLease tells whether some extension runs at generate-lease,
// which the "extension" allocation algorithm needs.
func (k *checker) hasGenerateLease() bool {
	for _, e := range k.c.Extensions {
		if slices.Contains(e.Points, "generate-lease") {
			return true
		}
	}
	return false
}
