package lease

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"net/netip"
	"time"
)

// Record layout, version 1 (big-endian integers):
//
//	0      version (1)
//	1      kind
//	2      state
//	3      prefix length
//	4-19   prefix address (16 bytes)
//	20-23  IAID
//	24-31  preferred lifetime, nanoseconds
//	32-39  valid lifetime, nanoseconds
//	40-47  start, Unix nanoseconds (math.MinInt64: zero time)
//	48-55  expires, same
//	56-63  updated, same
//	64-    DUID, link and prefix name, each a uvarint length and the bytes
//	last 4 CRC-32C of everything before
//
// A later version appends fields and bumps the version byte; a reader
// rejects versions it does not know rather than guess.
const (
	codecVersion  = 1
	fixedLen      = 64
	crcLen        = 4
	minRecordLen  = fixedLen + 3 + crcLen
	maxDUIDLen    = 130 // RFC 8415 §11.1: type code + 128 octets
	maxNameLen    = 255
	zeroTimeNanos = math.MinInt64
	prefixKeyLen  = 17 // bbolt key: address, then length
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("corrupt lease record")

// record is a lease in its encoded form's terms: times as Unix
// nanoseconds and byte slices that may alias the buffer decoded from.
type record struct {
	addr      [16]byte
	bits      uint8
	kind      Kind
	state     State
	iaid      uint32
	preferred int64
	valid     int64
	start     int64
	expires   int64
	updated   int64
	duid      []byte
	link      []byte
	name      []byte
}

// AppendEncoded validates l and appends its binary encoding to dst.
func AppendEncoded(dst []byte, l *Lease) ([]byte, error) {
	r, err := recordOf(l)
	if err != nil {
		return dst, err
	}
	return r.appendTo(dst), nil
}

// Decode parses a record written by AppendEncoded. Truncated, altered or
// unknown-version records return an error wrapping ErrCorrupt.
func Decode(b []byte) (Lease, error) {
	r, err := decodeRecord(b)
	if err != nil {
		return Lease{}, err
	}
	return Lease{
		Prefix:     r.prefix(),
		Kind:       r.kind,
		DUID:       append([]byte(nil), r.duid...),
		IAID:       r.iaid,
		Link:       string(r.link),
		PrefixName: string(r.name),
		State:      r.state,
		Preferred:  time.Duration(r.preferred),
		Valid:      time.Duration(r.valid),
		Start:      timeOf(r.start),
		Expires:    timeOf(r.expires),
		Updated:    timeOf(r.updated),
	}, nil
}

// recordOf checks that l can be stored and converts it.
func recordOf(l *Lease) (record, error) {
	var r record
	if err := checkPrefix(l.Prefix); err != nil {
		return r, err
	}
	if l.Kind != NA && l.Kind != PD {
		return r, fmt.Errorf("lease %s: unknown kind %d", l.Prefix, l.Kind)
	}
	if l.Kind == NA && l.Prefix.Bits() != 128 {
		return r, fmt.Errorf("lease %s: an address lease must be a /128", l.Prefix)
	}
	if l.State < Leased || l.State > Expired {
		return r, fmt.Errorf("lease %s: unknown state %d", l.Prefix, l.State)
	}
	if len(l.DUID) > maxDUIDLen {
		return r, fmt.Errorf("lease %s: DUID of %d bytes exceeds %d", l.Prefix, len(l.DUID), maxDUIDLen)
	}
	if len(l.Link) > maxNameLen || len(l.PrefixName) > maxNameLen {
		return r, fmt.Errorf("lease %s: link or prefix name longer than %d bytes", l.Prefix, maxNameLen)
	}
	r.addr = l.Prefix.Addr().As16()
	r.bits = uint8(l.Prefix.Bits())
	r.kind, r.state, r.iaid = l.Kind, l.State, l.IAID
	r.preferred, r.valid = int64(l.Preferred), int64(l.Valid)
	var err error
	if r.start, err = nanosOf(l.Start); err != nil {
		return r, fmt.Errorf("lease %s: start: %w", l.Prefix, err)
	}
	if r.expires, err = nanosOf(l.Expires); err != nil {
		return r, fmt.Errorf("lease %s: expires: %w", l.Prefix, err)
	}
	if r.updated, err = nanosOf(l.Updated); err != nil {
		return r, fmt.Errorf("lease %s: updated: %w", l.Prefix, err)
	}
	r.duid, r.link, r.name = l.DUID, []byte(l.Link), []byte(l.PrefixName)
	return r, nil
}

// checkPrefix accepts valid, masked IPv6 prefixes without a zone.
func checkPrefix(p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is6() {
		return fmt.Errorf("prefix %s: not a valid IPv6 prefix", p)
	}
	if p.Addr().Zone() != "" || p.Masked() != p {
		return fmt.Errorf("prefix %s: not in canonical form (want %s)", p, p.Masked())
	}
	return nil
}

// nanosOf converts t to Unix nanoseconds, refusing times outside the
// years 1678-2262 that int64 nanoseconds can hold.
func nanosOf(t time.Time) (int64, error) {
	if t.IsZero() {
		return zeroTimeNanos, nil
	}
	n := t.UnixNano()
	if n == zeroTimeNanos || !time.Unix(0, n).Equal(t) {
		return 0, fmt.Errorf("time %s out of the storable range", t)
	}
	return n, nil
}

func timeOf(n int64) time.Time {
	if n == zeroTimeNanos {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (r *record) prefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16(r.addr), int(r.bits))
}

func (r *record) key() [prefixKeyLen]byte {
	var k [prefixKeyLen]byte
	copy(k[:16], r.addr[:])
	k[16] = r.bits
	return k
}

func (r *record) appendTo(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, codecVersion, byte(r.kind), byte(r.state), r.bits)
	dst = append(dst, r.addr[:]...)
	dst = binary.BigEndian.AppendUint32(dst, r.iaid)
	for _, v := range [...]int64{r.preferred, r.valid, r.start, r.expires, r.updated} {
		dst = binary.BigEndian.AppendUint64(dst, uint64(v))
	}
	for _, b := range [...][]byte{r.duid, r.link, r.name} {
		dst = binary.AppendUvarint(dst, uint64(len(b)))
		dst = append(dst, b...)
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable))
}

// decodeRecord parses b; the byte slices of the result alias b.
func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) < minRecordLen {
		return r, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, len(b))
	}
	if b[0] != codecVersion {
		return r, fmt.Errorf("%w: unknown version %d", ErrCorrupt, b[0])
	}
	body, sum := b[:len(b)-crcLen], binary.BigEndian.Uint32(b[len(b)-crcLen:])
	if crc32.Checksum(body, crcTable) != sum {
		return r, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r.kind, r.state, r.bits = Kind(b[1]), State(b[2]), b[3]
	copy(r.addr[:], b[4:20])
	r.iaid = binary.BigEndian.Uint32(b[20:24])
	ints := [...]*int64{&r.preferred, &r.valid, &r.start, &r.expires, &r.updated}
	for i, p := range ints {
		*p = int64(binary.BigEndian.Uint64(b[24+8*i:]))
	}
	rest := body[fixedLen:]
	for _, p := range [...]*[]byte{&r.duid, &r.link, &r.name} {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return r, fmt.Errorf("%w: bad field length", ErrCorrupt)
		}
		*p, rest = rest[w:w+int(n)], rest[w+int(n):]
	}
	if len(rest) != 0 {
		return r, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(rest))
	}
	return r, r.check()
}

// check applies the rules recordOf enforces to a decoded record.
func (r *record) check() error {
	switch {
	case r.bits > 128:
		return fmt.Errorf("%w: prefix length %d", ErrCorrupt, r.bits)
	case r.prefix().Masked() != r.prefix():
		return fmt.Errorf("%w: prefix %s has host bits set", ErrCorrupt, r.prefix())
	case r.kind != NA && r.kind != PD, r.kind == NA && r.bits != 128:
		return fmt.Errorf("%w: kind %d for %s", ErrCorrupt, r.kind, r.prefix())
	case r.state < Leased || r.state > Expired:
		return fmt.Errorf("%w: state %d", ErrCorrupt, r.state)
	case len(r.duid) > maxDUIDLen || len(r.link) > maxNameLen || len(r.name) > maxNameLen:
		return fmt.Errorf("%w: field too long", ErrCorrupt)
	}
	return nil
}
