package core

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

// infinity is the DHCPv6 lifetime meaning "forever" (0xffffffff seconds).
const infinity = time.Duration(0xffffffff) * time.Second

// state is a configuration compiled for the packet path. It is immutable
// once built; a reload builds a new one and swaps it in.
type state struct {
	cfg         *config.Config
	links       []*link
	byInterface map[string]*link
	byIfaceID   map[string]*link
	prefixes    []*prefix
	reserved    map[string][]*config.Reservation // by raw DUID
	reservedFor map[netip.Prefix]string          // reserved lease → raw DUID
	// defaultPolicy is the policy of answers without a link: "default",
	// else an empty one.
	defaultPolicy *config.Policy
	policyOpts    map[*config.Policy]*policyOptions
}

// link is a network segment and the prefixes served on it.
type link struct {
	name   string
	policy *config.Policy
	na     []*prefix // dhcp prefixes, in config order
	pd     []*prefix // prefix-delegation prefixes, in config order
	// msgPolicy is the policy for message-level options: the link's,
	// else its first prefix's, else the state's default.
	msgPolicy *config.Policy
}

// policyOptions are a policy's options for answers, encoded once: the
// answer's options are only read once added (extensions are given copies
// of their data), so every answer shares them.
type policyOptions struct {
	reply       []dhcpv6.Option // DNS servers, domain search, SNTP servers: every answer
	preference  dhcpv6.Option   // Advertise; nil if none
	infoRefresh dhcpv6.Option   // Reply to Information-request; nil if none
}

func compilePolicyOptions(pol *config.Policy) *policyOptions {
	o := pol.Options
	po := &policyOptions{}
	if len(o.DNSServers) > 0 {
		po.reply = append(po.reply, encoded(dhcpv6.OptDNS(ips(o.DNSServers)...)))
	}
	if len(o.DomainSearch) > 0 {
		po.reply = append(po.reply, encoded(dhcpv6.OptDomainSearchList(&rfc1035label.Labels{Labels: o.DomainSearch})))
	}
	if len(o.SNTPServers) > 0 {
		po.reply = append(po.reply, encoded(dhcpv6.OptSNTP(ips(o.SNTPServers)...)))
	}
	if o.Preference != nil {
		po.preference = encoded(dhcpv6.OptPreference(uint8(*o.Preference)))
	}
	if irt := o.InformationRefreshTime; irt != nil {
		po.infoRefresh = encoded(dhcpv6.OptInformationRefreshTime(time.Duration(*irt)))
	}
	return po
}

// encoded is o as an option of its code holding its encoding.
func encoded(o dhcpv6.Option) dhcpv6.Option {
	return &dhcpv6.OptionGeneric{OptionCode: o.Code(), OptionData: o.ToBytes()}
}

func ips(as []netip.Addr) []net.IP {
	out := make([]net.IP, len(as))
	for i, a := range as {
		out[i] = net.IP(a.AsSlice())
	}
	return out
}

// prefix is one configured prefix compiled for allocation.
type prefix struct {
	name    string
	link    *link
	address netip.Prefix // the whole configured prefix (on-link test)
	pool    netip.Prefix // where leases come from: range, else address
	kind    lease.Kind
	length  int // 128 for addresses, the delegated length for PD
	algs    []string
	policy  *config.Policy
	cursor  atomic.Uint64 // best-fit scan position
	// fullUntil (unix ns): a best-fit scan found no free slot; the pool is
	// not scanned again before then.
	fullUntil atomic.Int64
}

func compile(cfg *config.Config) (*state, error) {
	st := &state{
		cfg:         cfg,
		byInterface: map[string]*link{},
		byIfaceID:   map[string]*link{},
		reserved:    map[string][]*config.Reservation{},
		reservedFor: map[netip.Prefix]string{},
	}
	byName := map[string]*link{}
	for _, lc := range cfg.Links {
		l := &link{name: lc.Name, policy: cfg.Policy(lc.Policy)}
		byName[lc.Name] = l
		st.links = append(st.links, l)
		if lc.Interface != "" {
			st.byInterface[lc.Interface] = l
		}
		if lc.InterfaceID != "" {
			st.byIfaceID[lc.InterfaceID] = l
		}
	}
	for _, pc := range cfg.Prefixes {
		l := byName[pc.Link]
		if l == nil {
			return nil, fmt.Errorf("prefix %s: unknown link %q", pc.Name, pc.Link)
		}
		p := &prefix{name: pc.Name, link: l, address: pc.Address.Masked(), pool: pc.Address.Masked(),
			algs: pc.AllocationAlgorithms, policy: cfg.Policy(pc.Policy)}
		if pc.Range.IsValid() {
			p.pool = pc.Range.Masked()
		}
		if p.policy == nil {
			p.policy = l.policy
		}
		if p.policy == nil {
			return nil, fmt.Errorf("prefix %s: no policy", pc.Name)
		}
		if pc.DHCPType == "prefix-delegation" {
			p.kind, p.length = lease.PD, pc.PrefixLength
			l.pd = append(l.pd, p)
		} else {
			p.kind, p.length = lease.NA, 128
			l.na = append(l.na, p)
		}
		st.prefixes = append(st.prefixes, p)
	}
	st.defaultPolicy = cfg.Policy("default")
	if st.defaultPolicy == nil {
		st.defaultPolicy = &config.Policy{}
	}
	st.policyOpts = map[*config.Policy]*policyOptions{st.defaultPolicy: compilePolicyOptions(st.defaultPolicy)}
	for _, pol := range cfg.Policies {
		if pol != nil {
			st.policyOpts[pol] = compilePolicyOptions(pol)
		}
	}
	for _, l := range st.links {
		switch {
		case l.policy != nil:
			l.msgPolicy = l.policy
		case len(l.na) > 0:
			l.msgPolicy = l.na[0].policy
		case len(l.pd) > 0:
			l.msgPolicy = l.pd[0].policy
		default:
			l.msgPolicy = st.defaultPolicy
		}
		if st.policyOpts[l.msgPolicy] == nil {
			st.policyOpts[l.msgPolicy] = compilePolicyOptions(l.msgPolicy)
		}
	}
	for _, r := range cfg.Reservations {
		k := string(r.DUID)
		st.reserved[k] = append(st.reserved[k], r)
		if r.Address.IsValid() {
			st.reservedFor[netip.PrefixFrom(r.Address, 128)] = k
		}
		if r.Prefix.IsValid() {
			st.reservedFor[r.Prefix.Masked()] = k
		}
	}
	return st, nil
}

// linkForRelay finds the link of a relayed request: the one with a prefix
// containing the link-address, else the one named by the interface-id.
func (st *state) linkForRelay(linkAddr netip.Addr, ifaceID []byte) *link {
	if linkAddr.IsValid() && !linkAddr.IsUnspecified() && !linkAddr.IsLinkLocalUnicast() {
		for _, p := range st.prefixes {
			if p.kind == lease.NA && p.address.Contains(linkAddr) {
				return p.link
			}
		}
		for _, p := range st.prefixes {
			if p.address.Contains(linkAddr) {
				return p.link
			}
		}
	}
	if len(ifaceID) > 0 {
		if l := st.byIfaceID[string(ifaceID)]; l != nil {
			return l
		}
	}
	return nil
}

// prefixOf returns the link's prefix of kind k containing addr.
func (l *link) prefixOf(k lease.Kind, p netip.Prefix) *prefix {
	ps := l.na
	if k == lease.PD {
		ps = l.pd
	}
	for _, cp := range ps {
		if cp.address.Contains(p.Addr()) && p.Bits() >= cp.address.Bits() {
			return cp
		}
	}
	return nil
}

// onLink reports whether addr belongs to one of the link's prefixes.
func (l *link) onLink(addr netip.Addr) bool {
	for _, p := range l.na {
		if p.address.Contains(addr) {
			return true
		}
	}
	for _, p := range l.pd {
		if p.address.Contains(addr) {
			return true
		}
	}
	return false
}

// reservedByOther reports whether p is reserved for a client other than duid.
func (st *state) reservedByOther(p netip.Prefix, duid []byte) bool {
	k, ok := st.reservedFor[p]
	return ok && k != string(duid)
}

func lifetimes(pol *config.Policy) (preferred, valid time.Duration) {
	return time.Duration(pol.PreferredLifetime), time.Duration(pol.ValidLifetime)
}

func sameDUID(a, b []byte) bool { return bytes.Equal(a, b) }
