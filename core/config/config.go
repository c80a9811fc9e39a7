// Package config reads hook6's YAML configuration: the server, its control
// socket, policies, links, prefixes, reservations, extensions, plugins and
// failover. Decoding is strict (an unknown key is an error), every value is
// checked, defaults are filled in, and every problem found is reported with
// the file, line and dotted field path it concerns, as
// "FILE:LINE: FIELD: message".
//
// docs/configuration.md is the reference of every key and its default.
package config

import (
	_ "embed"
	"fmt"
	"net/netip"
	"os"
)

// DefaultYAML is the configuration `make run` serves with: relayed traffic
// only, one link named "lab" with an address prefix and a delegation
// prefix, state under ./var. Listening on port 547 needs root (or
// CAP_NET_BIND_SERVICE).
//
//go:embed default.yaml
var DefaultYAML []byte

// DefaultPolicy is the name of the policy used by links and prefixes that
// name none. It always exists: when the configuration does not define it,
// it is created with the default lifetimes.
const DefaultPolicy = "default"

// Config is one parsed, defaulted and validated configuration.
type Config struct {
	Server       Server             `yaml:"server"`
	Control      Control            `yaml:"control"`
	Metrics      Metrics            `yaml:"metrics"`
	Log          Log                `yaml:"log"`
	Policies     map[string]*Policy `yaml:"policies"`
	Links        []*Link            `yaml:"links"`
	Prefixes     []*Prefix          `yaml:"prefixes"`
	Reservations []*Reservation     `yaml:"reservations"`
	Extensions   []*Extension       `yaml:"extensions"`
	Plugins      Plugins            `yaml:"plugins"`
	Failover     *Failover          `yaml:"failover"`

	// File is the path the configuration was read from.
	File string `yaml:"-"`
}

// Server is how the server listens and where it keeps its state.
type Server struct {
	// Interfaces are served directly (multicast joined on each); relayed
	// traffic is accepted whatever this lists, so it may be empty.
	Interfaces []string `yaml:"interfaces"`
	// StateDir holds the server DUID and the lease database.
	StateDir string `yaml:"state-dir"`
	// Listen is the UDP address to serve on.
	Listen string `yaml:"listen"`
	// Workers is how many packets are handled at once.
	Workers int `yaml:"workers"`
	// ServerDUID, when set, overrides the DUID kept in StateDir.
	ServerDUID HexBytes `yaml:"server-duid"`
}

// Control is the daemon's control socket (HTTP+JSON on a unix socket).
type Control struct {
	Socket string `yaml:"socket"`
}

// Metrics is the Prometheus endpoint; an empty Listen turns it off.
type Metrics struct {
	Listen string `yaml:"listen"`
}

// Log is how the daemon logs.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error
	Format string `yaml:"format"` // text or json
}

// Policy is the lifetimes and options given with a lease.
type Policy struct {
	PreferredLifetime   Duration      `yaml:"preferred-lifetime"`
	ValidLifetime       Duration      `yaml:"valid-lifetime"`
	T1                  *Duration     `yaml:"t1"`
	T2                  *Duration     `yaml:"t2"`
	AllowRapidCommit    bool          `yaml:"allow-rapid-commit"`
	MaxLeasesPerBinding int           `yaml:"max-leases-per-binding"` // 0: no limit
	Options             PolicyOptions `yaml:"options"`
}

// PolicyOptions are the DHCPv6 options a policy puts in replies.
type PolicyOptions struct {
	Preference             *int         `yaml:"preference"`
	DNSServers             []netip.Addr `yaml:"dns-servers"`
	DomainSearch           []string     `yaml:"domain-search"`
	SNTPServers            []netip.Addr `yaml:"sntp-servers"`
	InformationRefreshTime *Duration    `yaml:"information-refresh-time"`
}

// Link is one network segment clients sit on. A request is matched to a
// link by its relay's link-address (which one of the link's dhcp prefixes
// contains), else by the relay's interface-id option, else by the interface
// it arrived on.
type Link struct {
	Name        string `yaml:"name"`
	Interface   string `yaml:"interface"`
	InterfaceID string `yaml:"interface-id"`
	Policy      string `yaml:"policy"`
}

// The prefix types.
const (
	TypeDHCP             = "dhcp"
	TypePrefixDelegation = "prefix-delegation"
)

// The allocation algorithms.
const (
	AlgoReservation         = "reservation"
	AlgoClientRequest       = "client-request"
	AlgoExtension           = "extension"
	AlgoInterfaceIdentifier = "interface-identifier"
	AlgoRandom              = "random"
	AlgoBestFit             = "best-fit"
)

// Prefix is address space on a link: addresses to lease (dhcp) or prefixes
// to delegate (prefix-delegation).
type Prefix struct {
	Name    string       `yaml:"name"`
	Link    string       `yaml:"link"`
	Address netip.Prefix `yaml:"address"`
	// Range, when valid, restricts allocation to this part of Address.
	Range                netip.Prefix `yaml:"range"`
	DHCPType             string       `yaml:"dhcp-type"`
	AllocationAlgorithms []string     `yaml:"allocation-algorithms"`
	// PrefixLength is the length of each delegated prefix (PD only).
	PrefixLength int    `yaml:"prefix-length"`
	Policy       string `yaml:"policy"`
}

// Pool is the space allocation draws from: Range when set, else Address.
func (p *Prefix) Pool() netip.Prefix {
	if p.Range.IsValid() {
		return p.Range
	}
	return p.Address
}

// Reservation gives a client (by DUID) a fixed address, a fixed delegated
// prefix, or both.
type Reservation struct {
	DUID    HexBytes     `yaml:"duid"`
	Address netip.Addr   `yaml:"address"`
	Prefix  netip.Prefix `yaml:"prefix"`
	Link    string       `yaml:"link"`
}

// The extension failure modes.
const (
	FailContinue = "continue"
	FailDrop     = "drop"
)

// Extension is a script, plugin or built-in run at extension points.
type Extension struct {
	Name        string            `yaml:"name"`
	Script      string            `yaml:"script"`
	Plugin      string            `yaml:"plugin"` // name or name@version
	Builtin     string            `yaml:"builtin"`
	Points      []string          `yaml:"points"` // config names, e.g. "generate-lease"
	InitArgs    map[string]string `yaml:"init-args"`
	Budget      Duration          `yaml:"budget"`
	FailureMode string            `yaml:"failure-mode"`
	Allow       ExtensionAllow    `yaml:"allow"`
}

// ExtensionAllow widens what a script may do.
type ExtensionAllow struct {
	Files      []string `yaml:"files"`
	Network    bool     `yaml:"network"`
	Goroutines bool     `yaml:"goroutines"`
}

// Plugins is where installed plugins live.
type Plugins struct {
	Dir string `yaml:"dir"`
}

// The failover roles.
const (
	RolePrimary   = "primary"
	RoleSecondary = "secondary"
)

// Failover is this server's side of a failover pair.
type Failover struct {
	Role            string       `yaml:"role"`
	Name            string       `yaml:"name"`
	Local           string       `yaml:"local"`
	Peer            string       `yaml:"peer"`
	MCLT            Duration     `yaml:"mclt"`
	TLS             *FailoverTLS `yaml:"tls"`
	AutoPartnerDown Duration     `yaml:"auto-partner-down"` // 0: never
	MaxUnacked      int          `yaml:"max-unacked"`
	Keepalive       Duration     `yaml:"keepalive"`
}

// FailoverTLS secures the partner connection. Insecure means plain TCP,
// without TLS, and is for labs only.
type FailoverTLS struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	CA       string `yaml:"ca"`
	Insecure bool   `yaml:"insecure"`
}

// Load reads the configuration file at path, decodes it, fills in
// defaults and validates it. A configuration that is not valid gives
// Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for configuration text already read; name is the file it
// came from, used in errors and to resolve relative paths.
func Parse(name string, data []byte) (*Config, error) {
	c, d := decodeFile(name, data)
	if c != nil {
		check(c, d)
	}
	if errs := d.errs; len(errs) > 0 {
		errs.sortByLine()
		return nil, errs
	}
	return c, nil
}

// Default gives the embedded default configuration (DefaultYAML).
func Default() (*Config, error) { return Parse("default.yaml", DefaultYAML) }

// Policy gives the policy of that name, nil if there is none.
func (c *Config) Policy(name string) *Policy { return c.Policies[name] }

// LinkByName gives the link of that name, nil if there is none.
func (c *Config) LinkByName(name string) *Link {
	for _, l := range c.Links {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// PrefixByName gives the prefix of that name, nil if there is none.
func (c *Config) PrefixByName(name string) *Prefix {
	for _, p := range c.Prefixes {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// PrefixesOn gives the prefixes of a link, in configuration order.
func (c *Config) PrefixesOn(link string) []*Prefix {
	var out []*Prefix
	for _, p := range c.Prefixes {
		if p.Link == link {
			out = append(out, p)
		}
	}
	return out
}
