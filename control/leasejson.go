package control

import (
	"encoding/json"
	"io"
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

// appendLeaseJSON appends l as an element of the indented array.
func appendLeaseJSON(b []byte, l *Lease) ([]byte, error) {
	js, err := json.MarshalIndent(l, "  ", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, js...), nil
}
