package plugin

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/hook6/hook6/hooks"
)

// Compact encodings of prefixes and options (see proto/extension.proto):
// a prefix is 16 address bytes then a length byte, a list of prefixes
// their concatenation; options use DHCPv6's code/length/data encoding.

const prefixLen = 17

func appendPrefix(b []byte, p netip.Prefix) []byte {
	a := p.Addr().As16() // DHCPv6 carries IPv6 only
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	b = append(b, a[:]...)
	return append(b, byte(bits))
}

// prefixBytes encodes one prefix; an invalid prefix is an empty field.
func prefixBytes(p netip.Prefix) []byte {
	if !p.IsValid() {
		return nil
	}
	return appendPrefix(make([]byte, 0, prefixLen), p)
}

func prefixListBytes(ps []netip.Prefix) []byte {
	if len(ps) == 0 {
		return nil
	}
	b := make([]byte, 0, prefixLen*len(ps))
	for _, p := range ps {
		b = appendPrefix(b, p)
	}
	return b
}

// parsePrefix decodes one prefix; an empty field is no prefix.
func parsePrefix(b []byte) (netip.Prefix, error) {
	if len(b) == 0 {
		return netip.Prefix{}, nil
	}
	if len(b) != prefixLen || b[16] > 128 {
		return netip.Prefix{}, garbage("prefix %x", b)
	}
	return netip.PrefixFrom(netip.AddrFrom16([16]byte(b[:16])), int(b[16])), nil
}

func parsePrefixList(b []byte) ([]netip.Prefix, error) {
	if len(b)%prefixLen != 0 {
		return nil, garbage("prefix list of %d bytes", len(b))
	}
	ps := make([]netip.Prefix, 0, len(b)/prefixLen)
	for ; len(b) > 0; b = b[prefixLen:] {
		p, err := parsePrefix(b[:prefixLen])
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// optionsBytes encodes options as DHCPv6 does.
func optionsBytes(os []hooks.Option) ([]byte, error) {
	if len(os) == 0 {
		return nil, nil
	}
	n := 0
	for _, o := range os {
		if len(o.Data) > 0xffff {
			return nil, fmt.Errorf("option %d: %d bytes of data, more than an option holds", o.Code, len(o.Data))
		}
		n += 4 + len(o.Data)
	}
	b := make([]byte, 0, n)
	for _, o := range os {
		b = binary.BigEndian.AppendUint16(b, o.Code)
		b = binary.BigEndian.AppendUint16(b, uint16(len(o.Data)))
		b = append(b, o.Data...)
	}
	return b, nil
}

// parseOptions decodes options; their data share b's memory.
func parseOptions(b []byte) ([]hooks.Option, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var os []hooks.Option
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, garbage("option list truncated")
		}
		code, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return nil, garbage("option %d truncated", code)
		}
		os = append(os, hooks.Option{Code: code, Data: b[4 : 4+n : 4+n]})
		b = b[4+n:]
	}
	return os, nil
}
