package config

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/hook6/hook6/hooks"
)

func (k *checker) extensions() {
	names := map[string]string{}
	for i, e := range k.c.Extensions {
		p := index("extensions", i)
		k.name(p+".name", e.Name, names, "extension")
		k.extensionKind(p, e)
		k.points(p+".points", e)
		if !k.set(p + ".budget") {
			e.Budget = DefaultBudget
		} else if e.Budget <= 0 || e.Budget > MaxBudget {
			k.errf(p+".budget", "must be longer than 0 and at most %s, not %s", MaxBudget, e.Budget)
		}
		k.oneOf(p+".failure-mode", &e.FailureMode, FailContinue, FailContinue, FailDrop)
		for j, f := range e.Allow.Files {
			if f == "" {
				k.errf(index(p+".allow.files", j), "empty path")
			}
			e.Allow.Files[j] = k.resolve(f)
		}
	}
}

// extensionKind checks that exactly one of script, plugin and builtin is
// given, and that allow is only given to scripts.
func (k *checker) extensionKind(p string, e *Extension) {
	var given []string
	for _, f := range []struct{ key, val string }{{"script", e.Script}, {"plugin", e.Plugin}, {"builtin", e.Builtin}} {
		if f.val != "" {
			given = append(given, f.key)
		}
	}
	switch len(given) {
	case 0:
		k.errf(p, "one of script, plugin or builtin is required")
	case 1:
	default:
		k.errf(p+"."+given[1], "%s and %s are exclusive: give only one", given[0], given[1])
	}
	e.Script = k.resolve(e.Script)
	if e.Plugin != "" {
		if err := checkPluginRef(e.Plugin); err != nil {
			k.errf(p+".plugin", "%v", err)
		}
	}
	if e.Builtin != "" {
		if err := validName(e.Builtin); err != nil {
			k.errf(p+".builtin", "%v", err)
		}
	}
	if k.set(p+".allow") && e.Script == "" {
		k.errf(p+".allow", "applies only to scripts (plugins run in their own process)")
	}
}

// checkPluginRef checks "name" or "name@version".
func checkPluginRef(s string) error {
	name, version, versioned := strings.Cut(s, "@")
	if err := validName(name); err != nil || name == "" {
		return fmt.Errorf("invalid plugin %q: want name or name@version", s)
	}
	if versioned {
		if err := validName(version); err != nil || version == "" {
			return fmt.Errorf("invalid plugin version in %q", s)
		}
	}
	return nil
}

// points checks an extension's points and writes them as config names.
func (k *checker) points(path string, e *Extension) {
	if len(e.Points) == 0 {
		k.errf(path, "at least one extension point is required")
		return
	}
	seen := map[hooks.Point]bool{}
	for i, s := range e.Points {
		pt, err := hooks.ParsePoint(s)
		if err != nil {
			names := make([]string, 0, len(hooks.Points()))
			for _, q := range hooks.Points() {
				names = append(names, q.String())
			}
			k.errf(index(path, i), "unknown extension point %q (known: %s)", s, strings.Join(names, ", "))
			continue
		}
		if seen[pt] {
			k.errf(index(path, i), "point %s is listed twice", pt)
		}
		seen[pt] = true
		e.Points[i] = pt.String()
	}
}

func (k *checker) links() {
	ifaces := map[string]bool{}
	for _, name := range k.c.Server.Interfaces {
		ifaces[name] = true
	}
	names, byIface, byID := map[string]string{}, map[string]string{}, map[string]string{}
	for i, l := range k.c.Links {
		p := index("links", i)
		k.name(p+".name", l.Name, names, "link")
		if l.Interface != "" {
			if !ifaces[l.Interface] {
				k.errf(p+".interface", "interface %q is not in server.interfaces", l.Interface)
			}
			if first, dup := byIface[l.Interface]; dup {
				k.errf(p+".interface", "interface %q already belongs to %s", l.Interface, first)
			}
			byIface[l.Interface] = p
		}
		if l.InterfaceID != "" {
			if first, dup := byID[l.InterfaceID]; dup {
				k.errf(p+".interface-id", "interface-id %q already belongs to %s", l.InterfaceID, first)
			}
			byID[l.InterfaceID] = p
		}
		l.Policy = k.policyRef(p+".policy", l.Policy, DefaultPolicy)
	}
}

// policyRef gives the policy a link or prefix uses: def when it names
// none, else the one it names, which must exist.
func (k *checker) policyRef(path, name, def string) string {
	if name == "" {
		return def
	}
	if k.c.Policies[name] == nil {
		k.errf(path, "unknown policy %q", name)
	}
	return name
}

func (k *checker) prefixes() {
	names := map[string]string{}
	generate := k.hasGenerateLease()
	for i, pr := range k.c.Prefixes {
		p := index("prefixes", i)
		if k.name(p+".name", pr.Name, names, "prefix") || pr.Link != "" {
			k.prefixLink(p, pr)
		}
		k.oneOf(p+".dhcp-type", &pr.DHCPType, TypeDHCP, TypeDHCP, TypePrefixDelegation)
		if !pr.Address.IsValid() {
			k.errf(p+".address", "required")
		} else if pr.Range.IsValid() && !contains(pr.Address, pr.Range) {
			k.errf(p+".range", "%s is not inside address %s", pr.Range, pr.Address)
		}
		if pr.DHCPType == TypeDHCP || pr.DHCPType == TypePrefixDelegation {
			k.prefixLength(p, pr)
			k.algorithms(p+".allocation-algorithms", pr, generate)
		}
		def := DefaultPolicy
		if l := k.c.LinkByName(pr.Link); l != nil {
			def = l.Policy
		}
		pr.Policy = k.policyRef(p+".policy", pr.Policy, def)
	}
}

// prefixLink checks the prefix's link, or makes the prefix a link of its
// own when it names none.
func (k *checker) prefixLink(p string, pr *Prefix) {
	switch {
	case pr.Link != "":
		if k.c.LinkByName(pr.Link) == nil {
			k.errf(p+".link", "unknown link %q", pr.Link)
		}
	case pr.Name == "":
	case k.c.LinkByName(pr.Name) != nil:
		k.errf(p+".link", "missing, and a link named %q already exists: set link: %s", pr.Name, pr.Name)
	default:
		pr.Link = pr.Name
		k.c.Links = append(k.c.Links, &Link{Name: pr.Name, Policy: DefaultPolicy})
	}
}

// contains tells whether inner lies inside outer.
func contains(outer, inner netip.Prefix) bool {
	return inner.Bits() >= outer.Bits() && outer.Contains(inner.Addr())
}

func (k *checker) prefixLength(p string, pr *Prefix) {
	path := p + ".prefix-length"
	if pr.DHCPType != TypePrefixDelegation {
		if k.set(path) {
			k.errf(path, "applies only to prefix-delegation prefixes")
		}
		return
	}
	pool := pr.Pool()
	switch {
	case !k.set(path):
		k.errf(path, "required for prefix-delegation: the length of each delegated prefix")
	case pr.PrefixLength > 128:
		k.errf(path, "%d is longer than 128", pr.PrefixLength)
	case pr.Address.IsValid() && pr.PrefixLength <= pr.Address.Bits():
		k.errf(path, "%d must be longer than the address's /%d", pr.PrefixLength, pr.Address.Bits())
	case pool.IsValid() && pr.PrefixLength < pool.Bits():
		k.errf(path, "%d is shorter than the range's /%d", pr.PrefixLength, pool.Bits())
	}
}

func (k *checker) algorithms(path string, pr *Prefix, generate bool) {
	if len(pr.AllocationAlgorithms) == 0 {
		if !k.set(path) {
			pr.AllocationAlgorithms = DefaultAlgorithms(pr.DHCPType)
			return
		}
		k.errf(path, "lists no algorithm: leave it out for the default")
		return
	}
	seen := map[string]bool{}
	for i, a := range pr.AllocationAlgorithms {
		ap := index(path, i)
		switch {
		case !slices.Contains(algorithms, a):
			k.errf(ap, "unknown allocation algorithm %q (known: %s)", a, strings.Join(algorithms, ", "))
		case seen[a]:
			k.errf(ap, "%s is listed twice", a)
		case a == AlgoBestFit && pr.DHCPType != TypePrefixDelegation:
			k.errf(ap, "best-fit applies only to prefix-delegation prefixes")
		case a == AlgoInterfaceIdentifier && pr.DHCPType != TypeDHCP:
			k.errf(ap, "interface-identifier applies only to dhcp prefixes")
		case a == AlgoInterfaceIdentifier && pr.Address.IsValid() && pr.Address.Bits() > 64:
			k.errf(ap, "interface-identifier needs an address of /64 or shorter, not /%d", pr.Address.Bits())
		case a == AlgoExtension && !generate:
			k.errf(ap, "extension needs an extension at the generate-lease point")
		}
		seen[a] = true
	}
}

// overlaps checks that no two prefixes allocate from the same space, and
// that dhcp prefixes of different links do not overlap (a relay's
// link-address would then match both links).
func (k *checker) overlaps() {
	ps := k.c.Prefixes
	for j := range ps {
		for i := range j {
			a, b := ps[i], ps[j]
			if !a.Pool().IsValid() || !b.Pool().IsValid() {
				continue
			}
			field := index("prefixes", j) + ".address"
			if b.Range.IsValid() {
				field = index("prefixes", j) + ".range"
			}
			switch {
			case a.Pool().Overlaps(b.Pool()):
				k.errf(field, "%s overlaps %s of prefix %q", b.Pool(), a.Pool(), a.Name)
			case a.DHCPType == TypeDHCP && b.DHCPType == TypeDHCP && a.Link != b.Link && a.Address.Overlaps(b.Address):
				k.errf(index("prefixes", j)+".address", "%s overlaps %s of prefix %q on link %q: a relay's link-address would match both links",
					b.Address, a.Address, a.Name, a.Link)
			}
		}
	}
}

func (k *checker) reservations() {
	addrs, pfxs := map[netip.Addr]string{}, map[netip.Prefix]string{}
	for i, r := range k.c.Reservations {
		p := index("reservations", i)
		if len(r.DUID) == 0 {
			k.errf(p+".duid", "required")
		} else if err := checkDUID(r.DUID); err != nil {
			k.errf(p+".duid", "%v", err)
		}
		if r.Link != "" && k.c.LinkByName(r.Link) == nil {
			k.errf(p+".link", "unknown link %q", r.Link)
			continue
		}
		if !r.Address.IsValid() && !r.Prefix.IsValid() {
			k.errf(p+".address", "an address, a prefix or both are required")
			continue
		}
		addrLink, pfxLink := "", ""
		if r.Address.IsValid() {
			addrLink = k.reservedIn(p+".address", r, TypeDHCP, netip.PrefixFrom(r.Address, 128))
			if first, dup := addrs[r.Address]; dup {
				k.errf(p+".address", "%s is already reserved by %s", r.Address, first)
			}
			addrs[r.Address] = p
		}
		if r.Prefix.IsValid() {
			pfxLink = k.reservedIn(p+".prefix", r, TypePrefixDelegation, r.Prefix)
			if first, dup := pfxs[r.Prefix]; dup {
				k.errf(p+".prefix", "%s is already reserved by %s", r.Prefix, first)
			}
			pfxs[r.Prefix] = p
		}
		if addrLink != "" && pfxLink != "" && addrLink != pfxLink {
			k.errf(p+".prefix", "%s is on link %q but the address is on link %q", r.Prefix, pfxLink, addrLink)
		}
		if r.Link == "" {
			r.Link = cmp.Or(addrLink, pfxLink)
		}
	}
}

// reservedIn finds the prefix of that type (on the reservation's link,
// if it names one) a reserved address or prefix lies in, and gives its
// link; "" after reporting when there is none.
func (k *checker) reservedIn(path string, r *Reservation, typ string, want netip.Prefix) string {
	for _, pr := range k.c.Prefixes {
		if pr.DHCPType != typ || !pr.Address.IsValid() || (r.Link != "" && pr.Link != r.Link) {
			continue
		}
		if contains(pr.Address, want) && (typ == TypeDHCP || want.Bits() > pr.Address.Bits()) {
			return pr.Link
		}
	}
	where := ""
	if r.Link != "" {
		where = fmt.Sprintf(" of link %q", r.Link)
	}
	shown := want.String()
	if typ == TypeDHCP {
		shown = want.Addr().String()
	}
	k.errf(path, "%s is not inside any %s prefix%s", shown, typ, where)
	return ""
}

func (k *checker) failover() {
	f := k.c.Failover
	if f == nil {
		return
	}
	if f.Role == "" {
		k.errf("failover.role", "required: primary or secondary")
	} else {
		k.oneOf("failover.role", &f.Role, "", RolePrimary, RoleSecondary)
	}
	if f.Name == "" {
		f.Name = DefaultFailoverName
	} else if err := validName(f.Name); err != nil {
		k.errf("failover.name", "%v", err)
	}
	if f.Local == "" {
		f.Local = net.JoinHostPort("::", DefaultFailoverPort)
	} else {
		f.Local = withPort(f.Local, DefaultFailoverPort)
		if err := checkHostPort(f.Local, true); err != nil {
			k.errf("failover.local", "%v", err)
		}
	}
	if f.Peer == "" {
		k.errf("failover.peer", "required: the partner's address, e.g. \"[2001:db8::2]:647\"")
	} else {
		f.Peer = withPort(f.Peer, DefaultFailoverPort)
		if err := checkHostPort(f.Peer, false); err != nil {
			k.errf("failover.peer", "%v", err)
		}
	}
	k.positive("failover.mclt", &f.MCLT, DefaultMCLT)
	k.positive("failover.keepalive", &f.Keepalive, DefaultKeepalive)
	if !k.set("failover.max-unacked") {
		f.MaxUnacked = DefaultMaxUnacked
	} else if f.MaxUnacked < 1 {
		k.errf("failover.max-unacked", "must be 1 or more")
	}
	k.failoverTLS(f)
}

// positive defaults an absent duration and refuses a zero one.
func (k *checker) positive(path string, d *Duration, def Duration) {
	if !k.set(path) {
		*d = def
	} else if *d <= 0 {
		k.errf(path, "must be longer than 0")
	}
}

func (k *checker) failoverTLS(f *Failover) {
	t := f.TLS
	if t == nil {
		k.errf("failover.tls", "required: give cert, key and ca, or insecure: true for plain TCP (labs only)")
		return
	}
	files := []struct {
		key string
		val *string
	}{{"cert", &t.Cert}, {"key", &t.Key}, {"ca", &t.CA}}
	for _, f := range files {
		path := "failover.tls." + f.key
		switch {
		case t.Insecure && *f.val != "":
			k.errf(path, "not used with insecure: true (plain TCP)")
		case !t.Insecure && *f.val == "":
			k.errf(path, "required (or insecure: true for plain TCP)")
		}
		*f.val = k.resolve(*f.val)
	}
}

// withPort adds the default port to an address given without one.
func withPort(s, port string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return net.JoinHostPort(a.String(), port)
	}
	if !strings.ContainsAny(s, ":[]") {
		return net.JoinHostPort(s, port)
	}
	return s
}
