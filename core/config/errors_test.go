package config

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// errCase is one invalid configuration and the one problem it must give.
type errCase struct {
	name  string
	yaml  string
	line  int
	field string
	msg   string // must appear in the message
}

var errCases = []errCase{
	// Decoding: syntax, unknown keys, kinds of values.
	{"syntax", "server:\n  interfaces: [eth0\n", 2, "", "invalid YAML"},
	{"unknown top-level key", "server: {}\nbogus: 1\n", 2, "bogus", `unknown field "bogus" (known fields: server, control`},
	{"misspelled key alone", "prefixes:\n  - name: p\n    address: 2001:db8::/48\n    polcy: default\n",
		4, "prefixes[0].polcy", `unknown field "polcy" (did you mean "policy"?)`},
	{"prefix too long", "prefixes:\n  - name: p\n    address: 2001:db8::/129\n", 3, "prefixes[0].address",
		`invalid IPv6 prefix "2001:db8::/129": prefix length out of range`},
	{"prefix host bits", "prefixes:\n  - {name: p, address: 2001:db8::1/64}\n", 2, "prefixes[0].address",
		`bits set after the first 64 (did you mean 2001:db8::/64?)`},
	{"prefix ipv4", "prefixes:\n  - name: p\n    address: 10.0.0.0/8\n", 3, "prefixes[0].address", "is an IPv4 prefix; want IPv6"},
	{"address ipv4", "policies:\n  default:\n    options:\n      dns-servers:\n        - 2001:db8::53\n        - 192.0.2.1\n",
		6, "policies.default.options.dns-servers[1]", "192.0.2.1 is an IPv4 address; want IPv6"},
	{"address garbage", "policies:\n  default:\n    options: {dns-servers: [nameserver]}\n",
		3, "policies.default.options.dns-servers[0]", `invalid IPv6 address "nameserver"`},
	{"integer expected", "server:\n  workers: four\n", 2, "server.workers", `expected an integer, got "four"`},
	{"bool expected", "policies:\n  default:\n    allow-rapid-commit: yes\n", 3, "policies.default.allow-rapid-commit", `expected true or false, got "yes"`},
	{"string expected", "links:\n  - name: [a, b]\n", 2, "links[0].name", "expected a string, got a list"},
	{"list expected", "server:\n  interfaces: eth0\n", 2, "server.interfaces", `expected a list, got "eth0"`},
	{"mapping expected", "server: eth0\n", 1, "server", `expected a mapping, got "eth0"`},
	{"top level not a mapping", "- a\n- b\n", 1, "", "expected a mapping, got a list"},
	{"bad duration", "policies:\n  default:\n    preferred-lifetime: 5x\n", 3, "policies.default.preferred-lifetime", `invalid duration "5x"`},
	{"negative duration", "policies:\n  default:\n    t1: -5\n", 3, "policies.default.t1", "negative"},
	{"duplicate key", "log:\n  level: info\n  level: debug\n", 3, "log.level", `duplicate key "level" (first given on line 2)`},
	{"empty list entry", "links:\n  -\n", 2, "links[0]", "empty list entry"},
	{"two documents", "log: {level: info}\n---\nlog: {level: debug}\n", 3, "", "only one YAML document"},
	{"odd hex duid", "prefixes: [{name: p, address: 2001:db8::/64}]\nreservations:\n  - duid: 0001000\n    address: 2001:db8::5\n", 3, "reservations[0].duid", "odd number of hex digits"},
	{"bad hex duid", "prefixes: [{name: p, address: 2001:db8::/64}]\nreservations:\n  - duid: \"00:01:zz:01\"\n    address: 2001:db8::5\n", 3, "reservations[0].duid", "not hex digits"},
	{"unknown alias", "log:\n  level: *lvl\n", 2, "log.level", "alias *lvl refers to no anchor defined before it"},
	{"self merge", "log: &x\n  <<: *x\n", 2, "log", "merges (<<) nest too deeply"},
	{"flow address starting with colon", "policies:\n  default: {options: {dns-servers: [::1]}}\n", 2, "", `write IPv6 addresses in quotes`},
	{"integer too large", "server:\n  workers: 99999999999999999999\n", 2, "server.workers", "expected an integer"},

	// Server, control, metrics, log.
	{"interface twice", "server:\n  interfaces: [eth0, eth0]\n", 2, "server.interfaces[1]", `interface "eth0" is listed twice`},
	{"bad listen", "server:\n  listen: 547\n", 2, "server.listen", `invalid address "547"`},
	{"listen hostname", "server:\n  listen: \"localhost:547\"\n", 2, "server.listen", "the host must be an IP address"},
	{"negative workers", "server:\n  workers: -1\n", 2, "server.workers", "must be positive"},
	{"short server duid", "server:\n  server-duid: \"00:01\"\n", 2, "server.server-duid", "3 to 130 octets long, this one is 2"},
	{"metrics port", "metrics:\n  listen: \"127.0.0.1:http\"\n", 2, "metrics.listen", `invalid port "http"`},
	{"log level", "log:\n  level: verbose\n", 2, "log.level", `"verbose" is not one of debug, info, warn, error`},
	{"log format", "log:\n  format: xml\n", 2, "log.format", `"xml" is not one of text, json`},

	// Policies.
	{"preferred over valid", "policies:\n  default:\n    preferred-lifetime: 3h\n    valid-lifetime: 2h\n", 4,
		"policies.default.valid-lifetime", "2h is shorter than preferred-lifetime 3h"},
	{"preferred over default valid", "policies:\n  gold:\n    preferred-lifetime: 3h\n", 3,
		"policies.gold.preferred-lifetime", "3h is longer than valid-lifetime 2h (the default)"},
	{"zero valid", "policies:\n  default:\n    preferred-lifetime: 0\n    valid-lifetime: 0\n", 4, "policies.default.valid-lifetime", "must be longer than 0"},
	{"t1 over t2", "policies:\n  default:\n    t1: 40m\n    t2: 30m\n", 4, "policies.default.t2", "30m is shorter than t1 40m"},
	{"t1 over valid", "policies:\n  default:\n    t1: 3h\n", 3, "policies.default.t1", "3h is longer than valid-lifetime 2h"},
	{"t2 over valid", "policies:\n  default:\n    t2: 3h\n", 3, "policies.default.t2", "3h is longer than valid-lifetime 2h"},
	{"preference range", "policies:\n  default:\n    options: {preference: 256}\n", 3, "policies.default.options.preference", "256 is not between 0 and 255"},
	{"multicast dns", "policies:\n  default:\n    options:\n      dns-servers: [\"ff02::1\"]\n", 4, "policies.default.options.dns-servers[0]", "ff02::1 cannot be a server address"},
	{"bad domain", "policies:\n  default:\n    options:\n      domain-search: [example.com, -bad.example]\n", 4,
		"policies.default.options.domain-search[1]", `bad label "-bad"`},
	{"refresh too short", "policies:\n  default:\n    options:\n      information-refresh-time: 5m\n", 4,
		"policies.default.options.information-refresh-time", "5m is shorter than the minimum 10m"},
	{"negative max leases", "policies:\n  default:\n    max-leases-per-binding: -1\n", 3, "policies.default.max-leases-per-binding", "must be 0"},
	{"bad policy name", "policies:\n  \"gold plated\": {}\n", 2, "policies.gold plated", "invalid name"},

	// Links.
	{"link without name", "links:\n  - interface-id: x\n", 2, "links[0].name", "required"},
	{"link name twice", "links:\n  - name: lan\n  - name: lan\n", 3, "links[1].name", `link name "lan" is already used by links[0]`},
	{"link interface not served", "server:\n  interfaces: [eth0]\nlinks:\n  - name: lan\n    interface: eth1\n", 5,
		"links[0].interface", `interface "eth1" is not in server.interfaces`},
	{"link interface twice", "server: {interfaces: [eth0]}\nlinks:\n  - {name: a, interface: eth0}\n  - {name: b, interface: eth0}\n", 4,
		"links[1].interface", `interface "eth0" already belongs to links[0]`},
	{"link interface-id twice", "links:\n  - {name: a, interface-id: r1}\n  - {name: b, interface-id: r1}\n", 3,
		"links[1].interface-id", `interface-id "r1" already belongs to links[0]`},
	{"link unknown policy", "links:\n  - name: lan\n    policy: gold\n", 3, "links[0].policy", `unknown policy "gold"`},

	// Prefixes.
	{"prefix without address", "prefixes:\n  - name: p\n", 2, "prefixes[0].address", "required"},
	{"prefix name twice", "prefixes:\n  - {name: p, address: 2001:db8:1::/64}\n  - {name: p, address: 2001:db8:2::/64}\n", 3,
		"prefixes[1].name", `prefix name "p" is already used by prefixes[0]`},
	{"prefix unknown link", "prefixes:\n  - name: p\n    link: lan\n    address: 2001:db8::/64\n", 3, "prefixes[0].link", `unknown link "lan"`},
	{"prefix unknown policy", "prefixes:\n  - name: p\n    address: 2001:db8::/64\n    policy: gold\n", 4, "prefixes[0].policy", `unknown policy "gold"`},
	{"linkless prefix named like a link", "links:\n  - name: lan\nprefixes:\n  - name: lan\n    address: 2001:db8::/64\n", 4,
		"prefixes[0].link", `a link named "lan" already exists: set link: lan`},
	{"range outside address", "prefixes:\n  - name: p\n    address: 2001:db8:1::/64\n    range: 2001:db8:2::/65\n", 4,
		"prefixes[0].range", "2001:db8:2::/65 is not inside address 2001:db8:1::/64"},
	{"range wider than address", "prefixes:\n  - name: p\n    address: 2001:db8:1::/64\n    range: 2001:db8::/32\n", 4,
		"prefixes[0].range", "is not inside address"},
	{"bad dhcp-type", "prefixes:\n  - name: p\n    address: 2001:db8::/64\n    dhcp-type: pd\n", 4,
		"prefixes[0].dhcp-type", `"pd" is not one of dhcp, prefix-delegation`},
	{"pd without prefix-length", "prefixes:\n  - name: p\n    address: 2001:db8::/48\n    dhcp-type: prefix-delegation\n", 2,
		"prefixes[0].prefix-length", "required for prefix-delegation"},
	{"pd prefix-length too short", "prefixes:\n  - name: p\n    address: 2001:db8::/48\n    dhcp-type: prefix-delegation\n    prefix-length: 48\n", 5,
		"prefixes[0].prefix-length", "48 must be longer than the address's /48"},
	{"pd prefix-length over 128", "prefixes:\n  - name: p\n    address: 2001:db8::/48\n    dhcp-type: prefix-delegation\n    prefix-length: 129\n", 5,
		"prefixes[0].prefix-length", "129 is longer than 128"},
	{"pd prefix-length shorter than range", "prefixes:\n  - name: p\n    address: 2001:db8::/48\n    range: 2001:db8::/56\n    dhcp-type: prefix-delegation\n    prefix-length: 52\n", 6,
		"prefixes[0].prefix-length", "52 is shorter than the range's /56"},
	{"prefix-length on dhcp", "prefixes:\n  - name: p\n    address: 2001:db8::/64\n    prefix-length: 64\n", 4,
		"prefixes[0].prefix-length", "applies only to prefix-delegation prefixes"},
	{"unknown algorithm", "prefixes:\n  - name: p\n    address: 2001:db8::/64\n    allocation-algorithms: [random, sequential]\n", 4,
		"prefixes[0].allocation-algorithms[1]", `unknown allocation algorithm "sequential"`},
	{"algorithm twice", "prefixes:\n  - name: p\n    address: 2001:db8::/64\n    allocation-algorithms: [random, random]\n", 4,
		"prefixes[0].allocation-algorithms[1]", "random is listed twice"},
	{"empty algorithms", "prefixes:\n  - name: p\n    address: 2001:db8::/64\n    allocation-algorithms: []\n", 4,
		"prefixes[0].allocation-algorithms", "lists no algorithm"},
	{"best-fit on dhcp", "prefixes:\n  - name: p\n    address: 2001:db8::/64\n    allocation-algorithms:\n      - reservation\n      - best-fit\n", 6,
		"prefixes[0].allocation-algorithms[1]", "best-fit applies only to prefix-delegation prefixes"},
	{"interface-identifier on pd", "prefixes:\n  - name: p\n    address: 2001:db8::/48\n    dhcp-type: prefix-delegation\n    prefix-length: 56\n    allocation-algorithms: [interface-identifier]\n", 6,
		"prefixes[0].allocation-algorithms[0]", "interface-identifier applies only to dhcp prefixes"},
	{"interface-identifier on /80", "prefixes:\n  - name: p\n    address: 2001:db8::/80\n    allocation-algorithms: [interface-identifier]\n", 4,
		"prefixes[0].allocation-algorithms[0]", "needs an address of /64 or shorter, not /80"},
	{"extension algorithm without generate-lease", "prefixes:\n  - name: p\n    address: 2001:db8::/64\n    allocation-algorithms: [extension]\n", 4,
		"prefixes[0].allocation-algorithms[0]", "extension needs an extension at the generate-lease point"},
	{"overlapping pools", "prefixes:\n  - {name: a, address: 2001:db8::/48, dhcp-type: prefix-delegation, prefix-length: 56}\n  - {name: b, address: 2001:db8:0:1::/64}\n", 3,
		"prefixes[1].address", `2001:db8:0:1::/64 overlaps 2001:db8::/48 of prefix "a"`},
	{"overlapping ranges", "links: [{name: l}]\nprefixes:\n  - {name: a, link: l, address: 2001:db8::/64, range: 2001:db8::/65}\n  - {name: b, link: l, address: 2001:db8::/64, range: 2001:db8::/66}\n", 4,
		"prefixes[1].range", `2001:db8::/66 overlaps 2001:db8::/65 of prefix "a"`},
	{"dhcp prefixes of two links overlap", "prefixes:\n  - {name: a, address: 2001:db8::/64, range: 2001:db8::/65}\n  - {name: b, address: 2001:db8::/64, range: \"2001:db8::8000:0:0:0/65\"}\n", 3,
		"prefixes[1].address", `a relay's link-address would match both links`},

	// Reservations.
	{"reservation without duid", "prefixes: [{name: p, address: 2001:db8::/64}]\nreservations:\n  - address: 2001:db8::5\n", 3, "reservations[0].duid", "required"},
	{"reservation without address or prefix", "reservations:\n  - duid: 00:01:00:01:aa:bb\n", 2, "reservations[0].address", "an address, a prefix or both are required"},
	{"reserved address outside", "prefixes: [{name: p, address: 2001:db8::/64}]\nreservations:\n  - duid: 00:01:00:01:aa:bb\n    address: 2001:db9::5\n", 4,
		"reservations[0].address", "2001:db9::5 is not inside any dhcp prefix"},
	{"reserved address in pd prefix", "prefixes: [{name: p, address: 2001:db8::/48, dhcp-type: prefix-delegation, prefix-length: 56}]\nreservations:\n  - duid: 00:01:00:01:aa:bb\n    address: 2001:db8::5\n", 4,
		"reservations[0].address", "2001:db8::5 is not inside any dhcp prefix"},
	{"reserved prefix outside", "prefixes: [{name: p, address: 2001:db8::/48, dhcp-type: prefix-delegation, prefix-length: 56}]\nreservations:\n  - duid: 00:01:00:01:aa:bb\n    prefix: 2001:db9::/56\n", 4,
		"reservations[0].prefix", "2001:db9::/56 is not inside any prefix-delegation prefix"},
	{"reserved address on other link", "prefixes: [{name: p, address: 2001:db8::/64}, {name: q, address: 2001:db8:1::/64}]\nreservations:\n  - duid: 00:01:00:01:aa:bb\n    address: 2001:db8::5\n    link: q\n", 4,
		"reservations[0].address", `2001:db8::5 is not inside any dhcp prefix of link "q"`},
	{"reservation unknown link", "reservations:\n  - duid: 00:01:00:01:aa:bb\n    address: 2001:db8::5\n    link: nowhere\n", 4,
		"reservations[0].link", `unknown link "nowhere"`},
	{"address reserved twice", "prefixes: [{name: p, address: 2001:db8::/64}]\nreservations:\n  - {duid: 00:01:00:01:aa:bb, address: 2001:db8::5}\n  - {duid: 00:01:00:01:aa:cc, address: 2001:db8::5}\n", 4,
		"reservations[1].address", "2001:db8::5 is already reserved by reservations[0]"},
	{"address and prefix on different links", "prefixes:\n  - {name: a, address: 2001:db8::/64}\n  - {name: b, address: 2001:db8:100::/40, dhcp-type: prefix-delegation, prefix-length: 56}\nreservations:\n  - duid: 00:01:00:01:aa:bb\n    address: 2001:db8::5\n    prefix: 2001:db8:100::/56\n", 7,
		"reservations[0].prefix", `is on link "b" but the address is on link "a"`},

	// Extensions.
	{"extension without kind", "extensions:\n  - name: x\n    points: [generate-lease]\n", 2, "extensions[0]", "one of script, plugin or builtin is required"},
	{"extension two kinds", "extensions:\n  - name: x\n    script: x.go\n    plugin: x\n    points: [generate-lease]\n", 4, "extensions[0].plugin", "script and plugin are exclusive"},
	{"extension without points", "extensions:\n  - name: x\n    builtin: drop-flag\n", 2, "extensions[0].points", "at least one extension point is required"},
	{"extension unknown point", "extensions:\n  - name: x\n    builtin: drop-flag\n    points:\n      - pre-packet-encode\n      - before-send\n", 6,
		"extensions[0].points[1]", `unknown extension point "before-send" (known: post-packet-decode,`},
	{"extension point twice", "extensions:\n  - name: x\n    builtin: drop-flag\n    points: [pre-packet-encode, PrePacketEncode]\n", 4,
		"extensions[0].points[1]", "point pre-packet-encode is listed twice"},
	{"extension failure-mode", "extensions:\n  - name: x\n    builtin: drop-flag\n    points: [pre-packet-encode]\n    failure-mode: retry\n", 5,
		"extensions[0].failure-mode", `"retry" is not one of continue, drop`},
	{"extension zero budget", "extensions:\n  - name: x\n    builtin: drop-flag\n    points: [pre-packet-encode]\n    budget: 0\n", 5,
		"extensions[0].budget", "must be longer than 0 and at most 10s, not 0s"},
	{"extension bad plugin ref", "extensions:\n  - name: x\n    plugin: ldap@\n    points: [generate-lease]\n", 3, "extensions[0].plugin", `invalid plugin version in "ldap@"`},
	{"extension allow on plugin", "extensions:\n  - name: x\n    plugin: ldap@1.2.0\n    points: [generate-lease]\n    allow: {network: true}\n", 5,
		"extensions[0].allow", "applies only to scripts"},
	{"extension name twice", "extensions:\n  - {name: x, builtin: a, points: [generate-lease]}\n  - {name: x, builtin: b, points: [pre-packet-encode]}\n", 3,
		"extensions[1].name", `extension name "x" is already used by extensions[0]`},

	// Failover.
	{"failover role", "failover:\n  role: main\n  peer: \"[2001:db8::2]:647\"\n  tls: {insecure: true}\n", 2, "failover.role", `"main" is not one of primary, secondary`},
	{"failover without role", "failover:\n  peer: \"[2001:db8::2]:647\"\n  tls: {insecure: true}\n", 1, "failover.role", "required: primary or secondary"},
	{"failover without peer", "failover:\n  role: primary\n  tls: {insecure: true}\n", 1, "failover.peer", "required"},
	{"failover without tls", "failover:\n  role: primary\n  peer: 2001:db8::2\n", 1, "failover.tls", "required: give cert, key and ca, or insecure: true"},
	{"failover tls without ca", "failover:\n  role: primary\n  peer: 2001:db8::2\n  tls:\n    cert: a.pem\n    key: a.key\n", 4, "failover.tls.ca", "required (or insecure: true"},
	{"failover insecure with cert", "failover:\n  role: primary\n  peer: 2001:db8::2\n  tls:\n    insecure: true\n    cert: a.pem\n", 6, "failover.tls.cert", "not used with insecure: true"},
	{"failover zero mclt", "failover:\n  role: primary\n  peer: 2001:db8::2\n  tls: {insecure: true}\n  mclt: 0\n", 5, "failover.mclt", "must be longer than 0"},
	{"failover max-unacked", "failover:\n  role: primary\n  peer: 2001:db8::2\n  tls: {insecure: true}\n  max-unacked: 0\n", 5, "failover.max-unacked", "must be 1 or more"},
	{"failover bad peer", "failover:\n  role: primary\n  peer: \"[2001:db8::2]:x\"\n  tls: {insecure: true}\n", 3, "failover.peer", `invalid port "x"`},
}

func TestErrors(t *testing.T) {
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want Errors, got %T %v", err, err)
			}
			if len(errs) != 1 {
				t.Fatalf("want one error, got %d:\n%v", len(errs), err)
			}
			e := errs[0]
			if e.File != "t.yaml" || e.Line != tc.line || e.Field != tc.field || !strings.Contains(e.Msg, tc.msg) {
				t.Fatalf("got  %v\nwant t.yaml:%d: %s: …%s…", e, tc.line, tc.field, tc.msg)
			}
			want := "t.yaml:" + strconv.Itoa(tc.line) + ": "
			if tc.field != "" {
				want += tc.field + ": "
			}
			if got := e.Error(); got != want+e.Msg {
				t.Fatalf("Error() = %q, want %q", got, want+e.Msg)
			}
		})
	}
}

// TestAllErrors checks that every problem is reported, in file order, not
// just the first.
func TestAllErrors(t *testing.T) {
	src := `server:
  workers: many
  listen: nowhere
policies:
  default:
    preferred-lifetime: 3h
    valid-lifetime: 2h
prefixes:
  - name: p
    address: 2001:db8::/48
    dhcp-type: prefix-delegation
    prefix-lenght: 56
  - name: q
    address: 2001:db8:1::/129
extensions:
  - name: x
    points: [nowhere]
bogus: true
`
	_, err := Parse("all.yaml", []byte(src))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want Errors, got %v", err)
	}
	want := []string{
		"all.yaml:2: server.workers: expected an integer, got \"many\"",
		"all.yaml:3: server.listen: invalid address \"nowhere\": want host:port, e.g. \"[::]:547\"",
		"all.yaml:7: policies.default.valid-lifetime: 2h is shorter than preferred-lifetime 3h",
		"all.yaml:9: prefixes[0].prefix-length: required for prefix-delegation: the length of each delegated prefix",
		"all.yaml:12: prefixes[0].prefix-lenght: unknown field \"prefix-lenght\" (did you mean \"prefix-length\"?)",
		"all.yaml:14: prefixes[1].address: invalid IPv6 prefix \"2001:db8:1::/129\": prefix length out of range",
		"all.yaml:16: extensions[0]: one of script, plugin or builtin is required",
		"all.yaml:17: extensions[0].points[0]: unknown extension point \"nowhere\" (known: post-packet-decode, pre-client-lookup, post-client-lookup, generate-lease, check-lease-acceptable, lease-state-change, pre-packet-encode, post-packet-encode)",
		"all.yaml:18: bogus: unknown field \"bogus\" (known fields: server, control, metrics, log, policies, links, prefixes, reservations, extensions, plugins, failover)",
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	var one *Error
	if !errors.As(err, &one) || one.Line != 2 {
		t.Fatalf("errors.As(*Error) = %v", one)
	}
}
