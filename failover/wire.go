// Package failover is hook6's DHCPv6 failover protocol (RFC 8156): two
// servers, a primary and a secondary, that replicate every binding over a
// TCP (TLS) connection, follow the RFC's endpoint state machine, split
// address space so that they never lease the same address or prefix twice
// (independent allocation for addresses, proportional allocation for
// delegated prefixes), bound every client lifetime by the Maximum Client
// Lead Time, and merge lease databases that were built independently.
//
// An Endpoint plugs into the engine through three functions the engine
// calls (Filter, OnCommit, CapLifetime) and one the daemon calls for every
// client message (Admit).
package failover

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Message types (RFC 8156 §5.3, RFC 7653 §5.2).
const (
	MsgReply        uint8 = 7
	MsgStartTLS     uint8 = 23
	MsgBndUpd       uint8 = 24
	MsgBndReply     uint8 = 25
	MsgPoolReq      uint8 = 26
	MsgPoolResp     uint8 = 27
	MsgUpdReq       uint8 = 28
	MsgUpdReqAll    uint8 = 29
	MsgUpdDone      uint8 = 30
	MsgConnect      uint8 = 31
	MsgConnectReply uint8 = 32
	MsgDisconnect   uint8 = 33
	MsgState        uint8 = 34
	MsgContact      uint8 = 35
)

var msgNames = map[uint8]string{
	MsgReply: "REPLY", MsgStartTLS: "STARTTLS", MsgBndUpd: "BNDUPD", MsgBndReply: "BNDREPLY",
	MsgPoolReq: "POOLREQ", MsgPoolResp: "POOLRESP", MsgUpdReq: "UPDREQ", MsgUpdReqAll: "UPDREQALL",
	MsgUpdDone: "UPDDONE", MsgConnect: "CONNECT", MsgConnectReply: "CONNECTREPLY",
	MsgDisconnect: "DISCONNECT", MsgState: "STATE", MsgContact: "CONTACT",
}

// MsgName returns the RFC name of a message type.
func MsgName(t uint8) string {
	if n, ok := msgNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type-%d", t)
}

// Option codes (RFC 8156 §5.5 and the DHCPv6 options it reuses).
const (
	OptClientID            uint16 = 1
	OptIANA                uint16 = 3
	OptIAAddr              uint16 = 5
	OptStatusCode          uint16 = 13
	OptVendorOpts          uint16 = 17
	OptIAPD                uint16 = 25
	OptIAPrefix            uint16 = 26
	OptClientData          uint16 = 45
	OptCLTTime             uint16 = 46
	OptLQBaseTime          uint16 = 100
	OptBindingStatus       uint16 = 114
	OptConnectFlags        uint16 = 115
	OptExpirationTime      uint16 = 120
	OptMaxUnackedBndUpd    uint16 = 121
	OptMCLT                uint16 = 122
	OptPartnerLifetime     uint16 = 123
	OptPartnerLifetimeSent uint16 = 124
	OptPartnerDownTime     uint16 = 125
	OptPartnerRawCLTTime   uint16 = 126
	OptProtocolVersion     uint16 = 127
	OptKeepaliveTime       uint16 = 128
	OptRelationshipName    uint16 = 130
	OptServerFlags         uint16 = 131
	OptServerState         uint16 = 132
	OptStartTimeOfState    uint16 = 133
	OptStateExpirationTime uint16 = 134
)

// Status codes (RFC 8415 §21.13, RFC 7653 §5.3, RFC 8156 §5.6).
const (
	StatusSuccess                    uint16 = 0
	StatusUnspecFail                 uint16 = 1
	StatusNotSupported               uint16 = 14
	StatusTLSConnectionRefused       uint16 = 15
	StatusAddressInUse               uint16 = 16
	StatusConfigurationConflict      uint16 = 17
	StatusMissingBindingInformation  uint16 = 18
	StatusOutdatedBindingInformation uint16 = 19
	StatusServerShuttingDown         uint16 = 20
	StatusExcessiveTimeSkew          uint16 = 22
)

// Connect flags and server flags (§5.5.2, §5.5.15; bits numbered from the
// most significant).
const (
	ConnectFixedPDLength uint16 = 1 // bit 15
	FlagAckStartup       uint8  = 0x04
	FlagStartup          uint8  = 0x02
	FlagCommunicated     uint8  = 0x01
)

// Protocol version spoken (§5.5.11).
const (
	VersionMajor = 1
	VersionMinor = 0
)

// MaxMessage is the largest message the 2-octet length framing carries.
const MaxMessage = 0xffff

// Option is one DHCPv6 option: a code and its raw data.
type Option struct {
	Code uint16
	Data []byte
}

// OptionList is a list of options in wire order.
type OptionList []Option

// Get returns the data of the first option with code.
func (os OptionList) Get(code uint16) ([]byte, bool) {
	for _, o := range os {
		if o.Code == code {
			return o.Data, true
		}
	}
	return nil, false
}

// All returns every option with code.
func (os OptionList) All(code uint16) []Option {
	var out []Option
	for _, o := range os {
		if o.Code == code {
			out = append(out, o)
		}
	}
	return out
}

// U8 returns the first option with code as a byte.
func (os OptionList) U8(code uint16) (uint8, bool) {
	b, ok := os.Get(code)
	if !ok || len(b) != 1 {
		return 0, false
	}
	return b[0], true
}

// U16 returns the first option with code as a 16-bit integer.
func (os OptionList) U16(code uint16) (uint16, bool) {
	b, ok := os.Get(code)
	if !ok || len(b) != 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(b), true
}

// U32 returns the first option with code as a 32-bit integer.
func (os OptionList) U32(code uint16) (uint32, bool) {
	b, ok := os.Get(code)
	if !ok || len(b) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

// Time returns the first option with code as an absolute time.
func (os OptionList) Time(code uint16, now time.Time) (time.Time, bool) {
	v, ok := os.U32(code)
	if !ok {
		return time.Time{}, false
	}
	return FromAbs(v, now), true
}

// Status returns the status code and message of the first
// OPTION_STATUS_CODE, and whether there is one.
func (os OptionList) Status() (uint16, string, bool) {
	b, ok := os.Get(OptStatusCode)
	if !ok || len(b) < 2 {
		return 0, "", false
	}
	return binary.BigEndian.Uint16(b), string(b[2:]), true
}

// AppendTo encodes the options after dst.
func (os OptionList) AppendTo(dst []byte) []byte {
	for _, o := range os {
		dst = binary.BigEndian.AppendUint16(dst, o.Code)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(o.Data)))
		dst = append(dst, o.Data...)
	}
	return dst
}

// Len is the encoded length of the options.
func (os OptionList) Len() int {
	n := 0
	for _, o := range os {
		n += 4 + len(o.Data)
	}
	return n
}

// Encode returns the options' encoding.
func (os OptionList) Encode() []byte { return os.AppendTo(make([]byte, 0, os.Len())) }

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed failover message")

// ParseOptions decodes a sequence of options; the data of each aliases b.
func ParseOptions(b []byte) (OptionList, error) {
	var out OptionList
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: %d stray bytes after the options", ErrMalformed, len(b))
		}
		code, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return nil, fmt.Errorf("%w: option %d of %d bytes overruns the message", ErrMalformed, code, n)
		}
		out = append(out, Option{Code: code, Data: b[4 : 4+n]})
		b = b[4+n:]
	}
	return out, nil
}

// Helpers building options.

// OptU8 is an option holding a byte.
func OptU8(code uint16, v uint8) Option { return Option{Code: code, Data: []byte{v}} }

// OptU16 is an option holding a 16-bit integer.
func OptU16(code uint16, v uint16) Option {
	return Option{Code: code, Data: binary.BigEndian.AppendUint16(nil, v)}
}

// OptU32 is an option holding a 32-bit integer.
func OptU32(code uint16, v uint32) Option {
	return Option{Code: code, Data: binary.BigEndian.AppendUint32(nil, v)}
}

// OptTime is an option holding an absolute time.
func OptTime(code uint16, t time.Time) Option { return OptU32(code, ToAbs(t)) }

// OptStatus is an OPTION_STATUS_CODE.
func OptStatus(code uint16, msg string) Option {
	b := binary.BigEndian.AppendUint16(nil, code)
	return Option{Code: OptStatusCode, Data: append(b, msg...)}
}

// OptNested is an option whose data is encoded options.
func OptNested(code uint16, os OptionList) Option { return Option{Code: code, Data: os.Encode()} }

// epoch2000 is the base of the protocol's absolute times.
var epoch2000 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ToAbs converts t to seconds since 2000-01-01 UTC modulo 2^32; the zero
// time is 0.
func ToAbs(t time.Time) uint32 {
	if t.IsZero() || t.Before(epoch2000) {
		return 0
	}
	return uint32(uint64(t.Sub(epoch2000) / time.Second))
}

// FromAbs converts an absolute time to the time.Time nearest to now that
// it can stand for (so the modulo-2^32 wrap in 2136 is handled).
func FromAbs(v uint32, now time.Time) time.Time {
	if v == 0 {
		return time.Time{}
	}
	base := ToAbs(now)
	delta := int64(int32(v - base)) // signed distance, modulo 2^32
	nowSec := now.Truncate(time.Second)
	if now.Before(epoch2000) {
		nowSec = epoch2000
	}
	return nowSec.Add(time.Duration(delta) * time.Second).UTC()
}

// Message is a failover message (§5.2): type, 24-bit transaction-id,
// sent-time and options.
type Message struct {
	Type     uint8
	TxID     uint32 // low 24 bits
	SentTime uint32 // set when written
	Options  OptionList
}

func (m *Message) String() string {
	return fmt.Sprintf("%s xid %#06x", MsgName(m.Type), m.TxID)
}

// hasSentTime reports whether messages of type t carry the sent-time
// field: failover messages do, the RFC 7653 STARTTLS exchange does not.
func hasSentTime(t uint8) bool { return t >= MsgBndUpd && t <= MsgContact }

// AppendFrame encodes m with its 2-octet length prefix after dst.
func (m *Message) AppendFrame(dst []byte) ([]byte, error) {
	hdr := 4
	if hasSentTime(m.Type) {
		hdr = 8
	}
	n := hdr + m.Options.Len()
	if n > MaxMessage {
		return dst, fmt.Errorf("%s of %d bytes exceeds the %d-byte frame", MsgName(m.Type), n, MaxMessage)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	dst = append(dst, m.Type, byte(m.TxID>>16), byte(m.TxID>>8), byte(m.TxID))
	if hdr == 8 {
		dst = binary.BigEndian.AppendUint32(dst, m.SentTime)
	}
	return m.Options.AppendTo(dst), nil
}

// Decode parses one message (without its length prefix); its options
// alias b.
func Decode(b []byte) (*Message, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrMalformed, len(b))
	}
	m := &Message{Type: b[0], TxID: uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])}
	rest := b[4:]
	if hasSentTime(m.Type) {
		if len(rest) < 4 {
			return nil, fmt.Errorf("%w: %s without sent-time", ErrMalformed, MsgName(m.Type))
		}
		m.SentTime, rest = binary.BigEndian.Uint32(rest), rest[4:]
	}
	opts, err := ParseOptions(rest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", MsgName(m.Type), err)
	}
	m.Options = opts
	return m, nil
}

// ReadMessage reads one framed message from r.
func ReadMessage(r *bufio.Reader) (*Message, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return Decode(buf)
}
