package hooks

import (
	"fmt"
	"slices"
	"sort"
)

// Reserved environment keys.
const (
	// KeyDrop set to "true" drops the packet after the current point. It
	// may not be set at generate-lease.
	KeyDrop = "drop"
	// KeySkipLease set to "true" at generate-lease gives no lease for the IA.
	KeySkipLease = "skip-lease"
)

// Server-provided read-only keys, set before post-packet-decode.
const (
	KeyMessageType  = "request.message-type" // SOLICIT, REQUEST, …
	KeyClientDUID   = "request.client-duid"  // hex
	KeyInterface    = "request.interface"    // arrival interface
	KeySource       = "request.source"       // source address of the packet
	KeyRelayed      = "request.relayed"      // "true" or "false"
	KeyLinkAddress  = "relay.link-address"   // innermost relay's link-address
	KeyPeerAddress  = "relay.peer-address"   // innermost relay's peer-address
	KeyInterfaceID  = "relay.interface-id"   // innermost relay's interface-id, hex
	KeyRemoteID     = "relay.remote-id"      // innermost relay's remote-id, hex
	KeyClientMAC    = "relay.client-mac"     // option 79, aa:bb:cc:dd:ee:ff
	KeyLink         = "server.link"          // selected link name (after post-packet-decode)
	KeyServerName   = "server.name"          // hostname of the server
	KeyVendorClass  = "request.vendor-class" // option 16 data, first string
	KeyUserClass    = "request.user-class"   // option 15 data, first string
	KeyRequestIAIDs = "request.ia-count"     // number of IAs in the request
)

// serverKeys are the server-provided keys, each with its slot in
// Env.server.
var serverKeys = [...]string{
	KeyMessageType, KeyClientDUID, KeyInterface, KeySource, KeyRelayed,
	KeyLinkAddress, KeyPeerAddress, KeyInterfaceID, KeyRemoteID, KeyClientMAC,
	KeyLink, KeyServerName, KeyVendorClass, KeyUserClass, KeyRequestIAIDs,
}

// Env.present has a bit per server key: this fails to compile past 16.
const _ uint16 = 1 << (len(serverKeys) - 1)

// ReadOnlyKeys lists the server-provided keys, for documentation and checks.
var ReadOnlyKeys = slices.Clone(serverKeys[:])

// serverSlot gives each server-provided key its slot in Env.server. It is
// built once and only read.
var serverSlot = func() map[string]uint8 {
	m := make(map[string]uint8, len(serverKeys))
	for i, k := range serverKeys {
		m[k] = uint8(i)
	}
	return m
}()

// IsServerKey reports whether k is one of the server-provided keys, which
// extensions may read but not set or delete.
func IsServerKey(k string) bool {
	_, ok := serverSlot[k]
	return ok
}

// Env is the environment dictionary of one packet: string keys and values
// shared by every extension at every point. It is not safe for use by
// several goroutines at once; one packet is handled by one goroutine.
//
// The server-provided keys live in a fixed array and the extensions' own
// keys in a map made on the first Set, so giving a packet its dictionary
// costs one small allocation rather than two maps filled key by key.
type Env struct {
	server  [len(serverKeys)]string
	present uint16            // bit i: server key i has been set
	m       map[string]string // the extensions' keys
	extraRO map[string]bool   // keys other than the server's given by SetServer
	point   Point
}

// NewEnv returns an empty dictionary.
func NewEnv() *Env { return &Env{} }

// SetServer sets a server-provided key. Extensions may not set or delete
// it. Any other key given here becomes read-only for extensions as well.
func (e *Env) SetServer(k, v string) {
	if i, ok := serverSlot[k]; ok {
		e.server[i] = v
		e.present |= 1 << i
		return
	}
	e.setMap(k, v)
	if e.extraRO == nil {
		e.extraRO = make(map[string]bool)
	}
	e.extraRO[k] = true
}

func (e *Env) setMap(k, v string) {
	if e.m == nil {
		e.m = make(map[string]string)
	}
	e.m[k] = v
}

// readOnly reports whether extensions may not change k.
func (e *Env) readOnly(k string) bool {
	return IsServerKey(k) || e.extraRO[k]
}

// AtPoint tells the dictionary which point is running, so rules that depend
// on the point (no drop at generate-lease) hold.
func (e *Env) AtPoint(p Point) { e.point = p }

// Get returns the value of k and whether it is set.
func (e *Env) Get(k string) (string, bool) {
	if i, ok := serverSlot[k]; ok {
		return e.server[i], e.present&(1<<i) != 0
	}
	v, ok := e.m[k]
	return v, ok
}

// Value returns the value of k, "" when unset.
func (e *Env) Value(k string) string {
	v, _ := e.Get(k)
	return v
}

// IsTrue reports whether k is set to a true value ("true", "1", "yes").
func (e *Env) IsTrue(k string) bool {
	switch e.Value(k) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

// Set sets k. Server-provided keys are read-only, and drop may not be set
// at generate-lease (set skip-lease and a flag of your own instead).
func (e *Env) Set(k, v string) error {
	if e.readOnly(k) {
		return fmt.Errorf("env key %q is read-only", k)
	}
	if k == KeyDrop && e.point == GenerateLease {
		return fmt.Errorf("drop may not be set at generate-lease: set %q and a flag of your own, and turn the flag into drop at pre-packet-encode", KeySkipLease)
	}
	e.setMap(k, v)
	return nil
}

// Delete removes k unless it is read-only.
func (e *Env) Delete(k string) error {
	if e.readOnly(k) {
		return fmt.Errorf("env key %q is read-only", k)
	}
	delete(e.m, k)
	return nil
}

// Keys returns the keys in sorted order.
func (e *Env) Keys() []string {
	ks := make([]string, 0, len(serverKeys)+len(e.m))
	for i, k := range serverKeys {
		if e.present&(1<<i) != 0 {
			ks = append(ks, k)
		}
	}
	for k := range e.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Map returns a copy of the dictionary.
func (e *Env) Map() map[string]string {
	c := make(map[string]string, len(serverKeys)+len(e.m))
	for i, k := range serverKeys {
		if e.present&(1<<i) != 0 {
			c[k] = e.server[i]
		}
	}
	for k, v := range e.m {
		c[k] = v
	}
	return c
}

// Reset empties the dictionary for reuse.
func (e *Env) Reset() {
	e.server, e.present, e.point = [len(serverKeys)]string{}, 0, 0
	clear(e.m)
	clear(e.extraRO)
}
