// Package hooks is the extension contract of hook6: the points along the
// packet pipeline, the per-packet Context every extension receives, the
// environment dictionary extensions share, and the Runner through which the
// core calls them.
//
// Scripts (yaegi), plugins (go-plugin) and built-in extensions all see this
// same API, so a script becomes a plugin by moving its file into a main
// package. This package imports only the standard library.
package hooks

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Point names a place in the packet pipeline where extensions run.
type Point uint8

// The points, in pipeline order.
const (
	PostPacketDecode Point = iota
	PreClientLookup
	PostClientLookup
	GenerateLease
	CheckLeaseAcceptable
	LeaseStateChange
	PrePacketEncode
	PostPacketEncode
	numPoints
)

var pointNames = [numPoints]string{
	"post-packet-decode", "pre-client-lookup", "post-client-lookup", "generate-lease",
	"check-lease-acceptable", "lease-state-change", "pre-packet-encode", "post-packet-encode",
}

var pointFuncs = [numPoints]string{
	"PostPacketDecode", "PreClientLookup", "PostClientLookup", "GenerateLease",
	"CheckLeaseAcceptable", "LeaseStateChange", "PrePacketEncode", "PostPacketEncode",
}

// Points lists every point in pipeline order.
func Points() []Point {
	ps := make([]Point, numPoints)
	for i := range ps {
		ps[i] = Point(i)
	}
	return ps
}

// String gives the point's config name, e.g. "post-packet-decode".
func (p Point) String() string {
	if p < numPoints {
		return pointNames[p]
	}
	return fmt.Sprintf("point(%d)", uint8(p))
}

// FuncName gives the name of the function a script or plugin defines to
// handle the point, e.g. "PostPacketDecode".
func (p Point) FuncName() string {
	if p < numPoints {
		return pointFuncs[p]
	}
	return ""
}

// ParsePoint accepts a config name ("generate-lease") or a function name
// ("GenerateLease").
func ParsePoint(s string) (Point, error) {
	for i := range pointNames {
		if pointNames[i] == s || pointFuncs[i] == s {
			return Point(i), nil
		}
	}
	return 0, fmt.Errorf("unknown extension point %q", s)
}

// IAType tells an address IA from a prefix-delegation IA.
type IAType string

// The IA types hook6 serves (RFC 9915 retires IA_TA).
const (
	IANA IAType = "na"
	IAPD IAType = "pd"
)

// IA is one identity association of the request.
type IA struct {
	Type IAType
	IAID uint32
	// Hints are the addresses (as /128) or prefixes the client asked for.
	Hints []netip.Prefix
}

// Option is a raw DHCPv6 option.
type Option struct {
	Code uint16
	Data []byte
}

// Relay is one Relay-forw layer, outermost first in Request.Relays.
type Relay struct {
	HopCount    uint8
	LinkAddress netip.Addr
	PeerAddress netip.Addr
	InterfaceID []byte
	RemoteID    []byte // option 37 without its enterprise number
	// ClientLinkLayer is option 79's link-layer address (no type prefix).
	ClientLinkLayer []byte
	Options         []Option
}

// Request is the decoded client message with its relay chain.
type Request struct {
	MessageType   string // "SOLICIT", "REQUEST", … as RFC 8415 names them
	TransactionID uint32
	ClientDUID    []byte
	IAs           []IA
	Options       []Option // options of the client's message, as received
	Relays        []Relay  // outermost first; empty when not relayed
	Source        netip.AddrPort
	Interface     string // arrival interface
	Link          string // name of the selected link, "" before selection
}

// Option returns the first option of the client message with code.
func (r *Request) Option(code uint16) ([]byte, bool) {
	for _, o := range r.Options {
		if o.Code == code {
			return o.Data, true
		}
	}
	return nil, false
}

// Response is the message being built; extensions edit it at
// pre-packet-encode. Edits are applied by the server when it encodes.
type Response struct {
	MessageType string
	// Preference overrides the Preference option when Set is true.
	Preference    uint8
	PreferenceSet bool
	Options       []Option // options the server put in the message
	Add           []Option // options to add
	Remove        []uint16 // option codes to remove
}

// AddOption adds an option to the response.
func (r *Response) AddOption(code uint16, data []byte) {
	r.Add = append(r.Add, Option{Code: code, Data: data})
}

// ReplaceOption removes every option with code and adds this one.
func (r *Response) ReplaceOption(code uint16, data []byte) {
	r.RemoveOption(code)
	r.AddOption(code, data)
}

// RemoveOption removes every option with code.
func (r *Response) RemoveOption(code uint16) {
	kept := r.Add[:0]
	for _, o := range r.Add {
		if o.Code != code {
			kept = append(kept, o)
		}
	}
	r.Add = kept
	r.Remove = append(r.Remove, code)
}

// SetPreference sets the Preference option (0–255).
func (r *Response) SetPreference(v uint8) {
	r.Preference, r.PreferenceSet = v, true
}

// Allocation is what generate-lease and check-lease-acceptable see: the IA
// being served and the prefix the lease must come from.
type Allocation struct {
	IA         IA
	PrefixName string
	From       netip.Prefix // the configured prefix (or its range)
	Length     int          // 128 for addresses, the delegated length for PD
	// Candidate is the lease proposed (check-lease-acceptable) or chosen
	// (generate-lease, after SetLease).
	Candidate netip.Prefix
	// Acceptable starts true at check-lease-acceptable; an extension sets it
	// false to refuse the candidate.
	Acceptable bool
}

// LeaseEvent is what lease-state-change sees.
type LeaseEvent struct {
	Prefix    netip.Prefix
	Type      IAType
	IAID      uint32
	DUID      []byte
	From, To  string // states: "offered", "leased", "released", "declined", "expired", "deleted"
	Valid     time.Duration
	Preferred time.Duration
}

// Context is what an extension receives at each point. One Context lives
// for one packet; Env is shared by every extension at every point.
type Context struct {
	Point      Point
	Request    *Request
	Response   *Response   // pre-packet-encode, post-packet-encode
	Allocation *Allocation // generate-lease, check-lease-acceptable
	Event      *LeaseEvent // lease-state-change
	Packet     []byte      // post-packet-encode: the encoded bytes
	Env        *Env
	Log        *slog.Logger
	// Ctx is cancelled when the extension's time budget runs out.
	Ctx context.Context
}

// SetLease gives the lease at generate-lease. An address or prefix outside
// the prefix being allocated from, or of the wrong length, is refused.
func (c *Context) SetLease(p netip.Prefix) error {
	a := c.Allocation
	if c.Point != GenerateLease || a == nil {
		return fmt.Errorf("SetLease is only allowed at generate-lease")
	}
	if !p.IsValid() {
		return fmt.Errorf("invalid lease %v", p)
	}
	if p.Bits() != a.Length {
		return fmt.Errorf("lease %v: want length /%d", p, a.Length)
	}
	if p.Masked() != p || !a.From.Contains(p.Addr()) || p.Bits() < a.From.Bits() {
		return fmt.Errorf("lease %v is outside %v", p, a.From)
	}
	a.Candidate = p
	return nil
}

// SetLeaseString is SetLease for a textual address ("2001:db8::5") or
// prefix ("2001:db8:100::/56"); an address is taken as a /128.
func (c *Context) SetLeaseString(s string) error {
	if p, err := netip.ParsePrefix(s); err == nil {
		return c.SetLease(p)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("lease %q: %w", s, err)
	}
	return c.SetLease(netip.PrefixFrom(a, 128))
}

// Drop asks the server to drop the packet after this point.
func (c *Context) Drop() error { return c.Env.Set(KeyDrop, "true") }

// SkipLease asks the server to give no lease for this IA (generate-lease).
func (c *Context) SkipLease() error { return c.Env.Set(KeySkipLease, "true") }

// Extension is one configured extension instance: a script, a plugin or a
// built-in. Handle is only called for points listed by Points.
type Extension interface {
	Name() string
	Points() []Point
	Handle(c *Context) error
}

// Closer is implemented by extensions holding resources (interpreters,
// plugin processes, connections).
type Closer interface {
	Close() error
}

// Runner runs the configured extensions at a point. The core holds one and
// swaps it on reload. A nil Runner runs nothing.
type Runner interface {
	// Has reports whether any extension handles p (so the core can skip
	// building a Context).
	Has(p Point) bool
	// Run calls the extensions of p in order. The returned error is only
	// set when the packet must be dropped because of a failing extension
	// (failure mode drop); Env carries every other decision.
	Run(c *Context) error
}
