package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// leaseReader reads a JSON array of leases one element at a time. It finds
// each element's end itself and decodes the shape LeaseWriter writes (known
// keys, plain ASCII strings, decimal numbers) by hand; any other element
// (escapes, other keys, null, ...) goes to encoding/json, so an element
// decodes as json.Unmarshal would decode it. Done this way rather than with
// json.Decoder's Token and More because the decoder runs every byte through
// its state machine twice, once to find the element and once to decode it,
// which made it most of `hook6ctl lease list`'s time; this reader spends
// several times less per lease (BenchmarkLeaseList in cmd/hook6ctl).
type leaseReader struct {
	r    io.Reader
	buf  []byte
	off  int  // next unread byte in buf
	eof  bool // r is spent
	rerr error
	n    int  // elements read
	open bool // '[' read
	done bool // ']' read
	// common shares the strings many leases repeat.
	common map[string]string
}

func newLeaseReader(r io.Reader) *leaseReader {
	return &leaseReader{r: r, buf: make([]byte, 0, 64<<10)}
}

// fill reads more into buf, keeping buf[off:]; false if nothing more comes.
func (lr *leaseReader) fill() bool {
	if lr.eof {
		return false
	}
	if lr.off > 0 {
		n := copy(lr.buf, lr.buf[lr.off:])
		lr.buf, lr.off = lr.buf[:n], 0
	}
	if len(lr.buf) == cap(lr.buf) {
		lr.buf = append(lr.buf, 0)[:len(lr.buf)] // grow for an element bigger than the buffer
	}
	for {
		n, err := lr.r.Read(lr.buf[len(lr.buf):cap(lr.buf)])
		lr.buf = lr.buf[:len(lr.buf)+n]
		if err != nil {
			lr.eof = true
			if !errors.Is(err, io.EOF) {
				lr.rerr = err
			}
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
}

// unexpectedEnd is the error of input that stops early.
func (lr *leaseReader) unexpectedEnd() error {
	if lr.rerr != nil {
		return lr.rerr
	}
	return io.ErrUnexpectedEOF
}

// peek skips white space and returns the next byte, or false at the end.
func (lr *leaseReader) peek() (byte, bool) {
	for {
		for ; lr.off < len(lr.buf); lr.off++ {
			switch c := lr.buf[lr.off]; c {
			case ' ', '\t', '\n', '\r':
			default:
				return c, true
			}
		}
		if !lr.fill() {
			return 0, false
		}
	}
}

// Next decodes the next lease into l and reports true, or reports false at
// the end of the array (err nil) or on an error.
func (lr *leaseReader) Next(l *Lease) (bool, error) {
	if lr.done {
		return false, nil
	}
	c, ok := lr.peek()
	if !ok {
		return false, lr.unexpectedEnd()
	}
	if !lr.open {
		if c != '[' {
			return false, fmt.Errorf("invalid character %s looking for the beginning of the lease array", quoteChar(c))
		}
		lr.open = true
		lr.off++
		if c, ok = lr.peek(); !ok {
			return false, lr.unexpectedEnd()
		}
		if c == ']' {
			return false, lr.end()
		}
	} else {
		switch c {
		case ']':
			return false, lr.end()
		case ',':
			lr.off++
		default:
			return false, fmt.Errorf("invalid character %s after lease %d", quoteChar(c), lr.n)
		}
		if c, ok = lr.peek(); !ok {
			return false, lr.unexpectedEnd()
		}
	}
	if c != '{' {
		return false, fmt.Errorf("lease %d: invalid character %s looking for the beginning of an object", lr.n+1, quoteChar(c))
	}
	lr.n++
	// Decode in place; this fails only for leases of another shape and
	// for a lease cut by the end of the buffer.
	*l = Lease{}
	if n, ok := lr.decodeFast(lr.buf[lr.off:], l); ok {
		lr.off += n
		return true, nil
	}
	elem, err := lr.object()
	if err != nil {
		return false, err
	}
	*l = Lease{}
	if n, ok := lr.decodeFast(elem, l); ok && n == len(elem) {
		return true, nil
	}
	*l = Lease{}
	if err := json.Unmarshal(elem, l); err != nil {
		return false, fmt.Errorf("lease %d: %w", lr.n, err)
	}
	return true, nil
}

// end reads the closing ']' at buf[off], which must end the input.
func (lr *leaseReader) end() error {
	lr.off++
	lr.done = true
	if c, ok := lr.peek(); ok {
		return fmt.Errorf("invalid character %s after the lease array", quoteChar(c))
	}
	return lr.rerr
}

// object returns the bytes of the object starting at buf[off], which is '{',
// and moves past it. The bytes stay valid until the next call.
func (lr *leaseReader) object() ([]byte, error) {
	depth, inString, escaped := 0, false, false
	i := lr.off // buf[lr.off:i] scanned so far
	for {
		for ; i < len(lr.buf); i++ {
			c := lr.buf[i]
			switch {
			case inString:
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
				}
			case c == '"':
				inString = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					elem := lr.buf[lr.off : i+1]
					lr.off = i + 1
					return elem, nil
				}
			}
		}
		scanned := i - lr.off
		if !lr.fill() {
			return nil, lr.unexpectedEnd()
		}
		i = lr.off + scanned
	}
}

// decodeFast decodes the object at the start of b into l if its keys are
// known and its values plain (see fastParser), and returns its length.
func (lr *leaseReader) decodeFast(b []byte, l *Lease) (int, bool) {
	p := fastParser{b: b}
	if !p.byte('{') {
		return 0, false
	}
	if p.byte('}') {
		return p.i, true
	}
	for {
		key, ok := p.plainString()
		if !ok || !p.byte(':') {
			return 0, false
		}
		switch string(key) {
		case "prefix":
			l.Prefix, ok = p.stringValue()
		case "kind":
			l.Kind, ok = lr.commonValue(&p)
		case "duid":
			l.DUID, ok = p.stringValue()
		case "iaid":
			l.IAID, ok = p.uint32Value()
		case "state":
			l.State, ok = lr.commonValue(&p)
		case "link":
			l.Link, ok = lr.commonValue(&p)
		case "prefix-name":
			l.PrefixName, ok = lr.commonValue(&p)
		case "preferred":
			l.Preferred, ok = p.uint32Value()
		case "valid":
			l.Valid, ok = p.uint32Value()
		case "start":
			ok = p.timeValue(&l.Start)
		case "expires":
			ok = p.timeValue(&l.Expires)
		default:
			return 0, false
		}
		if !ok {
			return 0, false
		}
		if p.byte(',') {
			continue
		}
		if p.byte('}') {
			return p.i, true
		}
		return 0, false
	}
}

// maxCommon bounds the strings a leaseReader keeps to share.
const maxCommon = 1024

// commonValue reads a string value of the kind many leases share (kind,
// state, link and prefix names), sharing one copy of each.
func (lr *leaseReader) commonValue(p *fastParser) (string, bool) {
	b, ok := p.plainString()
	if !ok {
		return "", false
	}
	if s, ok := lr.common[string(b)]; ok {
		return s, true
	}
	s := string(b)
	if lr.common == nil {
		lr.common = make(map[string]string)
	}
	if len(lr.common) < maxCommon {
		lr.common[s] = s
	}
	return s, true
}

// fastParser reads the simple JSON decodeLeaseFast takes; every method
// skips white space first.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) skip() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte reads c, if c is next.
func (p *fastParser) byte(c byte) bool {
	p.skip()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// plainString reads a string of printable ASCII without escapes and
// returns its content (aliasing b).
func (p *fastParser) plainString() ([]byte, bool) {
	p.skip()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		c := p.b[j]
		if c == '"' {
			p.i = j + 1
			return p.b[start:j], true
		}
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return nil, false
		}
	}
	return nil, false
}

func (p *fastParser) stringValue() (string, bool) {
	s, ok := p.plainString()
	return string(s), ok
}

// uint32Value reads a decimal integer that fits 32 bits, as JSON writes it.
func (p *fastParser) uint32Value() (uint32, bool) {
	p.skip()
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	digits := p.b[start:p.i]
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	v, err := strconv.ParseUint(string(digits), 10, 32)
	return uint32(v), err == nil
}

func (p *fastParser) timeValue(t *time.Time) bool {
	p.skip()
	start := p.i
	if _, ok := p.plainString(); !ok {
		return false
	}
	return t.UnmarshalJSON(p.b[start:p.i]) == nil
}

// quoteChar writes c for an error message as encoding/json does.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(c))
	return "'" + s[1:len(s)-1] + "'"
}
