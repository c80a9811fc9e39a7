package asynccache

import (
	"strings"

	"github.com/hook6/hook6/hooks"
)

// Client field names usable in filter and URL templates, with the env
// keys the server fills them from. Any other name is taken as an env key
// itself, so "{request.vendor-class}" or a key an earlier extension set
// works too.
const (
	FieldDUID        = "duid"         // request.client-duid, lowercase hex
	FieldRemoteID    = "remote-id"    // relay.remote-id, lowercase hex
	FieldInterfaceID = "interface-id" // relay.interface-id, lowercase hex
	FieldMAC         = "mac"          // relay.client-mac, aa:bb:cc:dd:ee:ff
	FieldLinkAddress = "link-address" // relay.link-address
	FieldPeerAddress = "peer-address" // relay.peer-address
	FieldLink        = "link"         // server.link
)

// EnvKey returns the env key a client field is read from.
func EnvKey(field string) string {
	switch field {
	case FieldDUID:
		return hooks.KeyClientDUID
	case FieldRemoteID:
		return hooks.KeyRemoteID
	case FieldInterfaceID:
		return hooks.KeyInterfaceID
	case FieldMAC:
		return hooks.KeyClientMAC
	case FieldLinkAddress:
		return hooks.KeyLinkAddress
	case FieldPeerAddress:
		return hooks.KeyPeerAddress
	case FieldLink:
		return hooks.KeyLink
	}
	return field
}

// ClientFields reads the named fields from env. A field whose env key is
// unset or empty is left out.
func ClientFields(env *hooks.Env, names []string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		if v := env.Value(EnvKey(n)); v != "" {
			m[n] = v
		}
	}
	return m
}

// keyer builds a client's cache key from the env without allocating when
// there is one field.
type keyer struct {
	names []string
	keys  []string // env keys of names
}

func newKeyer(names []string) keyer {
	k := keyer{names: names, keys: make([]string, len(names))}
	for i, n := range names {
		k.keys[i] = EnvKey(n)
	}
	return k
}

// key returns the cache key, false when a field is missing (the client
// cannot be looked up: the source would find nothing).
func (k keyer) key(env *hooks.Env) (string, bool) {
	if len(k.keys) == 1 {
		v := env.Value(k.keys[0])
		return v, v != ""
	}
	var b strings.Builder
	for i, ek := range k.keys {
		v := env.Value(ek)
		if v == "" {
			return "", false
		}
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(v)
	}
	return b.String(), true
}
