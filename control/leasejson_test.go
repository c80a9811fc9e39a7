package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// oddLeases are leases whose JSON takes every path of the encoder: escapes,
// HTML characters, invalid UTF-8, zero and zoned times, extreme numbers.
func oddLeases() []Lease {
	cet := time.FixedZone("", 2*3600)
	odd := time.FixedZone("", -(9*3600 + 30*60))
	return []Lease{
		{},
		{Prefix: "2001:db8:1::10/128", Kind: "na", DUID: "00:03:00:01:aa", IAID: 1, State: "leased", Link: "lan",
			PrefixName: "lan-addr", Preferred: 604800, Valid: 1209600, Start: t0, Expires: t0.Add(14 * 24 * time.Hour)},
		{Prefix: "2001:db8:8000:100::/56", Kind: "pd", DUID: "00:01", IAID: math.MaxUint32, State: "released",
			Preferred: 0, Valid: math.MaxUint32, Start: time.Date(2026, 3, 1, 13, 4, 5, 123456789, cet),
			Expires: time.Date(2026, 3, 1, 14, 4, 6, 120000000, odd)},
		{Prefix: "a\"b\\c", Kind: "<&>", DUID: "\x00\x1f\x7f", Link: "läñ\u2028\u2029", PrefixName: "\xff\xfe bad utf-8",
			State: "tab\there\nnewline", Start: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			Expires: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Prefix: strings.Repeat("x", 100<<10), Link: "long"}, // bigger than a buffer
	}
}

// indented is what json.Encoder with SetIndent("", "  ") writes for v.
func indented(t testing.TB, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestLeaseWriterMatchesEncoder(t *testing.T) {
	all := oddLeases()
	for n := 0; n <= len(all); n++ {
		ls := all[:n]
		var got bytes.Buffer
		lw := NewLeaseWriter(&got)
		for i := range ls {
			if err := lw.Write(&ls[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		if want := indented(t, ls); got.String() != want {
			t.Errorf("%d leases:\n%s\nwant\n%s", n, got.String(), want)
		}
		if lw.Count() != n {
			t.Errorf("Count = %d, want %d", lw.Count(), n)
		}
	}
}

func TestLeaseWriterBadTime(t *testing.T) {
	var got bytes.Buffer
	lw := NewLeaseWriter(&got)
	good := oddLeases()[1]
	bad := good
	bad.Expires = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := lw.Write(&good); err != nil {
		t.Fatal(err)
	}
	err := lw.Write(&bad)
	_, jerr := json.Marshal(bad)
	if err == nil || jerr == nil || err.Error() != jerr.Error() {
		t.Errorf("year 10000: err %v, want encoding/json's %v", err, jerr)
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if want := indented(t, []Lease{good}); got.String() != want {
		t.Errorf("after a refused lease:\n%s\nwant\n%s", got.String(), want)
	}
}

// decodeAll reads every lease of an array with a leaseReader.
func decodeAll(r io.Reader) ([]Lease, error) {
	lr := newLeaseReader(r)
	var ls []Lease
	for {
		var l Lease
		ok, err := lr.Next(&l)
		if err != nil || !ok {
			return ls, err
		}
		ls = append(ls, l)
	}
}

func TestLeaseReader(t *testing.T) {
	all := oddLeases()
	var enc bytes.Buffer
	lw := NewLeaseWriter(&enc)
	for i := range all {
		if err := lw.Write(&all[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"ours":    enc.String(),
		"compact": func() string { b, _ := json.Marshal(all); return string(b) }(),
		"empty":   "[]",
		"spaced":  " \r\n\t[ \n] \n",
		"other shapes": `[{"Prefix":"caps","IAID":7}, {"kind":null,"prefix":"p","unknown":{"a":[1,"]}"]}},` +
			`{"duid":"\u0041\"","valid":1e3}, {}, {"iaid":00}, {"iaid":-0}]`,
		"escaped key": `[{"pre\u0066ix":"x","link":"l"}]`,
		"zero lifetime": `[{"preferred":0,"valid":4294967295,"start":"2026-03-01T12:00:00.5+01:00",` +
			`"expires":"0001-01-01T00:00:00Z"}]`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			var want []Lease
			werr := json.Unmarshal([]byte(in), &want)
			for _, r := range []struct {
				name string
				r    io.Reader
			}{{"whole", strings.NewReader(in)}, {"byte by byte", iotest.OneByteReader(strings.NewReader(in))}} {
				got, err := decodeAll(r.r)
				if (err != nil) != (werr != nil) {
					t.Fatalf("%s: err %v, encoding/json's %v", r.name, err, werr)
				}
				if err != nil {
					continue
				}
				if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
					t.Errorf("%s:\n%+v\nwant\n%+v", r.name, got, want)
				}
				for i := range got {
					if !got[i].Start.Equal(want[i].Start) || got[i].Start.String() != want[i].Start.String() {
						t.Errorf("%s: lease %d start %v, want %v", r.name, i, got[i].Start, want[i].Start)
					}
				}
			}
		})
	}
}

func TestLeaseReaderErrors(t *testing.T) {
	full := indented(t, []Lease{oddLeases()[1], oddLeases()[2]})
	// Every cut of a list is an error, never a shorter list.
	for i := 0; i < len(strings.TrimSpace(full)); i++ {
		if ls, err := decodeAll(strings.NewReader(full[:i])); err == nil {
			t.Fatalf("cut at %d of %d: %d leases, no error", i, len(full), len(ls))
		} else if i > 0 && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: %v, want unexpected EOF", i, err)
		}
	}
	for _, in := range []string{
		`{}`, `[1]`, `[null]`, `["x"]`, `[{} {}]`, `[{},]`, `[{"iaid":"1"}]`, `[{"iaid":4294967296}]`,
		`[{"iaid":1.5}]`, `[{"prefix":1}]`, `[{"start":"yesterday"}]`, `[{"prefix":"x"]`, `[{"prefix" "x"}]`,
		`[{"prefix":"x",}]`, `[{"a":tru}]`, `[]]`, `[{}] x`,
	} {
		if ls, err := decodeAll(strings.NewReader(in)); err == nil {
			t.Errorf("%s: %+v, no error", in, ls)
		}
	}
	readErr := errors.New("connection reset")
	_, err := decodeAll(io.MultiReader(strings.NewReader(full[:100]), iotest.ErrReader(readErr)))
	if !errors.Is(err, readErr) {
		t.Errorf("read error: %v, want %v", err, readErr)
	}
}

func TestClientEachLease(t *testing.T) {
	b := &fakeBackend{leases: testLeases()}
	s, sock := startServer(t, b)
	c := NewClient(sock)
	ctx := context.Background()
	var got []string
	stop := errors.New("stop")
	err := c.EachLease(ctx, LeaseFilter{}, func(l *Lease) error {
		got = append(got, l.Prefix)
		if len(got) == 2 {
			return stop
		}
		return nil
	})
	if err != stop || len(got) != 2 {
		t.Errorf("EachLease stopped by fn: %v, %v", got, err)
	}

	// A list the server cuts short is an error after the leases before it.
	s.Handle("GET /v1/cut/leases", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		full := indented(t, []Lease{LeaseOf(testLeases()[0]), LeaseOf(testLeases()[1])})
		_, _ = io.WriteString(w, full[:len(full)/2+40])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	cut := NewClient(sock)
	got = nil
	err = cut.eachLeaseAt(ctx, "/v1/cut/leases", func(l *Lease) error {
		got = append(got, l.Prefix)
		return nil
	})
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 1 {
		t.Errorf("cut list: %v, %v; want one lease and unexpected EOF", got, err)
	}
}

// A lease the server cannot write is a 500 if it comes before any of the
// list went out, else it cuts the answer, so that the client sees an error
// rather than a shorter list.
func TestServerLeaseListUnencodable(t *testing.T) {
	b := &fakeBackend{leases: testLeases()}
	b.leases[1].Expires = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	_, sock := startServer(t, b)
	c := NewClient(sock)
	ls, err := c.Leases(context.Background(), LeaseFilter{})
	if StatusOf(err) != 500 || !strings.Contains(err.Error(), "listing leases: json: error calling MarshalJSON") {
		t.Errorf("Leases = %d leases, %v; want a 500", len(ls), err)
	}

	bad := b.leases[1]
	b.leases = nil
	for i := range 1000 { // some 300 kB of JSON before the bad lease
		l := testLeases()[0]
		l.IAID = uint32(i)
		b.leases = append(b.leases, l)
	}
	b.leases = append(b.leases, bad)
	ls, err = c.Leases(context.Background(), LeaseFilter{})
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(ls) == 0 {
		t.Errorf("Leases = %d leases, %v; want some and unexpected EOF", len(ls), err)
	}
}

// FuzzLeaseReader: what the lease reader decodes, encoding/json decodes
// the same; what encoding/json decodes, the reader decodes too, unless an
// element is not an object.
func FuzzLeaseReader(f *testing.F) {
	all := oddLeases()[:4]
	for i := range all {
		f.Add(strings.TrimSuffix(indented(t0Tester{}, all[i]), "\n"))
		b, _ := json.Marshal(all[i])
		f.Add(string(b))
	}
	f.Add(`{"Prefix":"caps","iaid":00}, {"kind":null}, {"a":[1,"]}"]}}`)
	f.Add(`{"duid":"\u0041\"","valid":1e3,"start":"2026-03-01T12:00:00.5+01:00"}`)
	f.Fuzz(func(t *testing.T, elems string) {
		in := "[" + elems + "]"
		var want []Lease
		werr := json.Unmarshal([]byte(in), &want)
		got, err := decodeAll(iotest.HalfReader(strings.NewReader(in)))
		if err == nil {
			if werr != nil {
				t.Fatalf("%q: reader took it, encoding/json: %v", in, werr)
			}
			if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("%q:\n%+v\nencoding/json:\n%+v", in, got, want)
			}
		} else if werr == nil && !strings.Contains(err.Error(), "looking for the beginning of an object") {
			t.Fatalf("%q: reader: %v; encoding/json took it", in, err)
		}
	})
}

// t0Tester lets indented run outside a test.
type t0Tester struct{ testing.TB }

func (t0Tester) Helper()           {}
func (t0Tester) Fatal(args ...any) { panic(fmt.Sprint(args...)) }
