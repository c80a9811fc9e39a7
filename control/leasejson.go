package control

import (
	"encoding/json"
	"io"
	"reflect"
	"strconv"
	"time"
)

// LeaseWriter writes leases one at a time as the indented JSON array that
// GET /v1/leases answers and `hook6ctl lease list -o json` prints: the
// bytes of a json.Encoder with SetIndent("", "  ") encoding the whole
// []Lease, without holding more than one buffer of it. Call Close after
// the last lease to end the array ("[]" if there was none) and flush.
type LeaseWriter struct {
	w     io.Writer
	buf   []byte
	n     int   // leases written
	wrote bool  // w has been written to
	err   error // first write error; every later call returns it
}

// leaseWriterBuf is how much a LeaseWriter gathers before writing.
const leaseWriterBuf = 64 << 10

// NewLeaseWriter returns a writer of a JSON lease array to w. It buffers;
// w need not.
func NewLeaseWriter(w io.Writer) *LeaseWriter {
	return &LeaseWriter{w: w, buf: make([]byte, 0, leaseWriterBuf+1024)}
}

// Write adds l to the array. An error is either w's, after which the
// writer is spent, or a lease JSON cannot carry (a time outside years 0 to
// 9999), which leaves the array as it was.
func (lw *LeaseWriter) Write(l *Lease) error {
	if lw.err != nil {
		return lw.err
	}
	mark := len(lw.buf)
	if lw.n == 0 {
		lw.buf = append(lw.buf, "[\n  "...)
	} else {
		lw.buf = append(lw.buf, ",\n  "...)
	}
	b, err := appendLeaseJSON(lw.buf, l)
	if err != nil {
		lw.buf = lw.buf[:mark]
		return err
	}
	lw.buf = b
	lw.n++
	if len(lw.buf) >= leaseWriterBuf {
		return lw.Flush()
	}
	return nil
}

// Flush writes what is buffered.
func (lw *LeaseWriter) Flush() error {
	if lw.err != nil {
		return lw.err
	}
	if len(lw.buf) > 0 {
		lw.wrote = true
		if _, err := lw.w.Write(lw.buf); err != nil {
			lw.err = err
			return err
		}
		lw.buf = lw.buf[:0]
	}
	return nil
}

// Close ends the array and flushes. It does not close the underlying
// writer.
func (lw *LeaseWriter) Close() error {
	if lw.err != nil {
		return lw.err
	}
	if lw.n == 0 {
		lw.buf = append(lw.buf, "[]\n"...)
	} else {
		lw.buf = append(lw.buf, "\n]\n"...)
	}
	return lw.Flush()
}

// Count is the number of leases written.
func (lw *LeaseWriter) Count() int { return lw.n }

// appendLeaseJSON appends l as json.MarshalIndent(l, "  ", "  ") would,
// field by field instead of by reflection.
func appendLeaseJSON(b []byte, l *Lease) ([]byte, error) {
	b = append(b, "{\n    \"prefix\": "...)
	b = appendJSONString(b, l.Prefix)
	b = append(b, ",\n    \"kind\": "...)
	b = appendJSONString(b, l.Kind)
	b = append(b, ",\n    \"duid\": "...)
	b = appendJSONString(b, l.DUID)
	b = append(b, ",\n    \"iaid\": "...)
	b = strconv.AppendUint(b, uint64(l.IAID), 10)
	b = append(b, ",\n    \"state\": "...)
	b = appendJSONString(b, l.State)
	b = append(b, ",\n    \"link\": "...)
	b = appendJSONString(b, l.Link)
	b = append(b, ",\n    \"prefix-name\": "...)
	b = appendJSONString(b, l.PrefixName)
	b = append(b, ",\n    \"preferred\": "...)
	b = strconv.AppendUint(b, uint64(l.Preferred), 10)
	b = append(b, ",\n    \"valid\": "...)
	b = strconv.AppendUint(b, uint64(l.Valid), 10)
	b = append(b, ",\n    \"start\": "...)
	b, err := appendJSONTime(b, l.Start)
	if err != nil {
		return nil, err
	}
	b = append(b, ",\n    \"expires\": "...)
	if b, err = appendJSONTime(b, l.Expires); err != nil {
		return nil, err
	}
	return append(b, "\n  }"...), nil
}

// appendJSONString appends s quoted as encoding/json does (HTML-escaped).
// Printable ASCII without quote, backslash, <, > or & is copied; anything
// else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			js, _ := json.Marshal(s) // a string always marshals
			return append(b, js...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as time.Time's MarshalJSON does.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		_, err = t.MarshalJSON() // for its wording
		return nil, &json.MarshalerError{Type: reflect.TypeFor[time.Time](), Err: err}
	}
	return append(out, '"'), nil
}
