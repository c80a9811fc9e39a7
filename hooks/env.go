package hooks

import (
	"fmt"
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

// ReadOnlyKeys lists the server-provided keys, for documentation and checks.
var ReadOnlyKeys = []string{
	KeyMessageType, KeyClientDUID, KeyInterface, KeySource, KeyRelayed,
	KeyLinkAddress, KeyPeerAddress, KeyInterfaceID, KeyRemoteID, KeyClientMAC,
	KeyLink, KeyServerName, KeyVendorClass, KeyUserClass, KeyRequestIAIDs,
}

// Env is the environment dictionary of one packet: string keys and values
// shared by every extension at every point. It is not safe for use by
// several goroutines at once; one packet is handled by one goroutine.
type Env struct {
	m        map[string]string
	readOnly map[string]bool
	point    Point
}

// envSize fits the server-provided keys and a few of the extensions' own,
// so filling a packet's dictionary does not grow its maps.
const envSize = 24

// NewEnv returns an empty dictionary.
func NewEnv() *Env {
	return &Env{m: make(map[string]string, envSize), readOnly: make(map[string]bool, envSize)}
}

// SetServer sets a server-provided key and marks it read-only for
// extensions.
func (e *Env) SetServer(k, v string) {
	e.m[k] = v
	if e.readOnly == nil {
		e.readOnly = make(map[string]bool, envSize)
	}
	e.readOnly[k] = true
}

// AtPoint tells the dictionary which point is running, so rules that depend
// on the point (no drop at generate-lease) hold.
func (e *Env) AtPoint(p Point) { e.point = p }

// Get returns the value of k and whether it is set.
func (e *Env) Get(k string) (string, bool) {
	v, ok := e.m[k]
	return v, ok
}

// Value returns the value of k, "" when unset.
func (e *Env) Value(k string) string { return e.m[k] }

// IsTrue reports whether k is set to a true value ("true", "1", "yes").
func (e *Env) IsTrue(k string) bool {
	switch e.m[k] {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

// Set sets k. Server-provided keys are read-only, and drop may not be set
// at generate-lease (set skip-lease and a flag of your own instead).
func (e *Env) Set(k, v string) error {
	if e.readOnly[k] {
		return fmt.Errorf("env key %q is read-only", k)
	}
	if k == KeyDrop && e.point == GenerateLease {
		return fmt.Errorf("drop may not be set at generate-lease: set %q and a flag of your own, and turn the flag into drop at pre-packet-encode", KeySkipLease)
	}
	e.m[k] = v
	return nil
}

// Delete removes k unless it is read-only.
func (e *Env) Delete(k string) error {
	if e.readOnly[k] {
		return fmt.Errorf("env key %q is read-only", k)
	}
	delete(e.m, k)
	return nil
}

// Keys returns the keys in sorted order.
func (e *Env) Keys() []string {
	ks := make([]string, 0, len(e.m))
	for k := range e.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Map returns a copy of the dictionary.
func (e *Env) Map() map[string]string {
	c := make(map[string]string, len(e.m))
	for k, v := range e.m {
		c[k] = v
	}
	return c
}

// Reset empties the dictionary for reuse.
func (e *Env) Reset() {
	clear(e.m)
	clear(e.readOnly)
	e.point = 0
}
