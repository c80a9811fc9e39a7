package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// leaseReader reads a JSON array of leases one element at a time with
// json.Decoder, so that a client holds one lease, not the whole list, and
// reports a list cut short (a server that stopped mid-way) as
// io.ErrUnexpectedEOF, never as a shorter list.
type leaseReader struct {
	dec  *json.Decoder
	n    int  // elements read
	open bool // '[' read
	done bool // ']' read
}

func newLeaseReader(r io.Reader) *leaseReader {
	return &leaseReader{dec: json.NewDecoder(r)}
}

// Next decodes the next lease into l and reports true, or reports false at
// the end of the array (err nil) or on an error.
func (lr *leaseReader) Next(l *Lease) (bool, error) {
	if lr.done {
		return false, nil
	}
	if !lr.open {
		tok, err := lr.dec.Token()
		if err != nil {
			return false, unexpectedEnd(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return false, fmt.Errorf("%s looking for the beginning of the lease array", describe(tok))
		}
		lr.open = true
	}
	if !lr.dec.More() {
		return false, lr.end()
	}
	lr.n++
	*l = Lease{}
	lp := l // null sets lp to nil: not a lease
	if err := lr.dec.Decode(&lp); err != nil {
		return false, fmt.Errorf("lease %d: %w", lr.n, unexpectedEnd(err))
	}
	if lp == nil {
		return false, fmt.Errorf("lease %d: null while looking for the beginning of an object", lr.n)
	}
	return true, nil
}

// end reads the closing ']', which must end the input.
func (lr *leaseReader) end() error {
	lr.done = true
	tok, err := lr.dec.Token()
	if err != nil {
		return unexpectedEnd(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != ']' {
		return fmt.Errorf("%s after lease %d", describe(tok), lr.n)
	}
	if tok, err := lr.dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return fmt.Errorf("%s after the lease array", describe(tok))
	}
	return nil
}

// unexpectedEnd turns the end of the input inside the array into
// io.ErrUnexpectedEOF.
func unexpectedEnd(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// describe names a token found where it does not belong.
func describe(tok json.Token) string {
	if d, ok := tok.(json.Delim); ok {
		return fmt.Sprintf("invalid character '%c'", rune(d))
	}
	return fmt.Sprintf("%#v", tok)
}
