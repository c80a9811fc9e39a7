package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hook6/hook6/control"
	"github.com/hook6/hook6/core/lease"
)

var update = flag.Bool("update", false, "rewrite testdata/lease-list golden files")

// oddFake is newFake with leases that exercise the output formats: empty
// link and prefix name, zero times, an infinite lifetime, a zone other than
// UTC with nanoseconds, long DUIDs, and names JSON must escape.
func oddFake() *fakeBackend {
	f := newFake()
	cet := time.FixedZone("", 2*3600)
	f.leases = append(f.leases,
		lease.Lease{Prefix: netip.MustParsePrefix("2001:db8:1::ffff/128"), Kind: lease.NA,
			DUID: []byte{0, 2, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, IAID: math.MaxUint32,
			State: lease.Released, Preferred: 0, Valid: math.MaxUint32 * time.Second},
		lease.Lease{Prefix: netip.MustParsePrefix("2001:db8:1::2:0/128"), Kind: lease.NA, DUID: []byte{0, 3, 0, 1, 0xcc},
			IAID: 12, Link: "wan<&>\"\\x", PrefixName: "läñ\u2028-pool\x01", State: lease.Declined,
			Preferred: 59 * time.Second, Valid: 3601 * time.Second,
			Start: time.Date(2026, 3, 1, 13, 4, 5, 123456789, cet), Expires: time.Date(2026, 3, 1, 14, 4, 6, 120000000, cet)},
		lease.Lease{Prefix: netip.MustParsePrefix("2001:db8:8000:200::/56"), Kind: lease.PD, DUID: []byte{0, 3, 0, 1, 0xbb},
			IAID: 0, Link: "a-much-longer-link-name", PrefixName: "pd", State: lease.Expired,
			Preferred: 86399 * time.Second, Valid: 90061 * time.Second, Start: t0, Expires: t0.Add(90061 * time.Second)},
	)
	return f
}

// TestLeaseListGolden pins the exact output of lease list, table and JSON,
// filtered and not, to what hook6ctl printed before it streamed.
func TestLeaseListGolden(t *testing.T) {
	_, sock := startFake(t, oddFake())
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"all.txt", nil},
		{"all.json", []string{"-o", "json"}},
		{"duid.txt", []string{"--duid", "00:03:00:01:bb"}},
		{"duid.json", []string{"--duid", "00:03:00:01:bb", "-o", "json"}},
		{"prefix.txt", []string{"--prefix", "2001:db8:1::/64"}},
		{"prefix.json", []string{"--prefix", "2001:db8:1::/64", "-o", "json"}},
		{"one.txt", []string{"--prefix", "2001:db8:1::10"}},
		{"one.json", []string{"--prefix", "2001:db8:1::10", "-o", "json"}},
		{"empty.txt", []string{"--prefix", "2001:db9::/32"}},
		{"empty.json", []string{"--prefix", "2001:db9::/32", "-o", "json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, sock, append([]string{"lease", "list"}, tc.args...)...)
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			path := filepath.Join("testdata", "lease-list", tc.name)
			if *update {
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if out != string(want) {
				t.Errorf("output differs from %s:\n%s\nwant\n%s", path, out, want)
			}
		})
	}
}

// failingBackend lists leases from a fake, or fails.
type failingBackend struct {
	*fakeBackend
	err error
}

func (f failingBackend) Leases(flt control.LeaseFilter) ([]control.Lease, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.fakeBackend.Leases(flt)
}

// TestLeaseListErrors: a list that fails, before it starts or part way, is
// an error and exit status 1, in either format.
func TestLeaseListErrors(t *testing.T) {
	_, sock := startFake(t, failingBackend{newFake(), errors.New("store on fire")})
	for _, o := range []string{"text", "json"} {
		code, out, errs := runCLI(t, sock, "lease", "list", "-o", o)
		if code != 1 || out != "" || errs != "hook6ctl: listing leases: store on fire\n" {
			t.Errorf("-o %s, backend failing: exit %d, stdout %q, stderr %q", o, code, out, errs)
		}
	}

	// The server cuts the list when it meets a lease it cannot write, after
	// 2,000 it has sent.
	f := newFake()
	f.leases = benchLeases(2000)
	f.leases = append(f.leases, f.leases[0])
	f.leases[2000].Expires = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	_, sock = startFake(t, f)
	for _, o := range []string{"text", "json"} {
		code, out, errs := runCLI(t, sock, "lease", "list", "-o", o)
		if code != 1 || !strings.HasPrefix(errs, "hook6ctl: GET /v1/leases: reading answer: ") ||
			!strings.Contains(errs, "unexpected EOF") || !strings.Contains(out, benchLeases(1)[0].Prefix.String()) {
			t.Errorf("-o %s, list cut: exit %d, stderr %q, %d bytes of stdout", o, code, errs, len(out))
		}
	}

	// A list cut inside a lease, or not a list at all.
	for _, tc := range []struct{ name, body, err string }{
		{"cut", "[\n  {\n    \"prefix\": \"2001:db8::1/128\",\n    \"ki", "unexpected EOF"},
		{"garbage", "[\n  {\"prefix\": \"2001:db8::1/128\"}\n  {", "lease 2: expected comma after array element"},
		{"object", "{\"leases\": []}", "invalid character '{' looking for the beginning of the lease array"},
	} {
		sock := startCannedAbort(t, []byte(tc.body))
		for _, o := range []string{"text", "json"} {
			code, _, errs := runCLI(t, sock, "lease", "list", "-o", o)
			if code != 1 || !strings.Contains(errs, tc.err) {
				t.Errorf("%s -o %s: exit %d, stderr %q, want %q", tc.name, o, code, errs, tc.err)
			}
		}
	}
}

// startCannedAbort serves body and then cuts the connection.
func startCannedAbort(t *testing.T, body []byte) string {
	sock := filepath.Join(t.TempDir(), "cut.sock")
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return sock
}

// TestStreamTable: up to tableBlock lines a streamTable writes what the
// tabwriter of a.table() writes; after, columns keep their widths and widen
// for a wider cell.
func TestStreamTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		w := []rune("xé-:0")
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteRune(w[rng.IntN(len(w))])
		}
		return b.String()
	}
	for _, n := range []int{0, 1, 2, 10, tableBlock - 1, tableBlock} {
		var want, got bytes.Buffer
		tw := newTable(&want)
		bw := bufio.NewWriter(&got)
		st := newStreamTable(bw)
		for range n {
			cells := make([]string, 4)
			for j := range cells {
				cells[j] = word()
			}
			row(tw, cells[0], cells[1], cells[2], cells[3])
			if err := st.Row(cells...); err != nil {
				t.Fatal(err)
			}
		}
		tw.Flush()
		if err := st.Flush(); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		if got.String() != want.String() {
			t.Errorf("%d lines:\n%s\nwant\n%s", n, got.String(), want.String())
		}
	}

	var got bytes.Buffer
	bw := bufio.NewWriter(&got)
	st := newStreamTable(bw)
	for i := range tableBlock {
		_ = st.Row(fmt.Sprint(i%10), "b", "c")
	}
	_ = st.Row("1234", "b", "c")
	_ = st.Row("1", "b", "c")
	_ = st.Flush()
	bw.Flush()
	lines := strings.Split(got.String(), "\n")
	if lines[0] != "0  b  c" || lines[tableBlock] != "1234  b  c" || lines[tableBlock+1] != "1     b  c" {
		t.Errorf("after the first block: %q %q %q", lines[0], lines[tableBlock], lines[tableBlock+1])
	}
}
