//go:build labbench

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hook6/hook6/bench/labbench"
	"github.com/hook6/hook6/e2e/lab"
)

// settle is how long hook6d is left alone before its RSS is read, so the
// garbage of loading has been collected.
const settle = 3 * time.Second

// scale measures hook6 with n leases: resident memory per lease over an
// empty server, restart time, and listing and deleting them all with
// hook6ctl. The leases are generated straight into the database with
// core/lease (80% addresses, 20% /56 prefixes of a /36: a /40 holds only
// 65,536 /56s); the daemon then loads them as it would after a restart.
func (b *bench) scale(t *testing.T, n int) *labbench.Scale {
	sc := &labbench.Scale{Leases: n, Addresses: n * 4 / 5, Prefixes: n - n*4/5}
	fail := func(err error) *labbench.Scale {
		sc.Error = err.Error()
		t.Error(err)
		return sc
	}
	l := lab.New(t)
	ns := l.Namespace("srv")
	cfg := pools.Hook6Config()
	cfg.Server.Interfaces, cfg.Links = nil, []lab.Link{{Name: "lan"}}
	pdPool := mustPrefix("2001:db8:8000::/36")
	cfg.Prefixes[1].Address = pdPool.String()

	empty := l.StartHook6d(ns, b.bins, cfg)
	var err error
	if sc.RSSEmpty, sc.AnonEmpty, err = settledRSS(empty); err != nil {
		return fail(err)
	}
	empty.Stop()

	stateDir := l.MkdirTemp("scale-state-")
	db := filepath.Join(stateDir, "leases.db")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	got, err := labbench.Generate(ctx, db, labbench.Population{
		Addresses: sc.Addresses, Prefixes: sc.Prefixes, Link: "lan", AddrName: "lan-addr", PDName: "lan-pd",
		AddrPool: pools.Addr, PDPool: pdPool, PDLen: pools.PDLen, Valid: 24 * time.Hour,
	}, time.Now())
	if err != nil {
		return fail(err)
	}
	sc.GenerateS = time.Since(start).Seconds()
	if got != n {
		return fail(fmt.Errorf("generated %d leases, want %d", got, n))
	}
	if fi, err := os.Stat(db); err == nil {
		sc.DBBytes = fi.Size()
	}
	fmt.Printf("scale: %d leases generated in %.1f s (%.0f MiB)\n", n, sc.GenerateS, float64(sc.DBBytes)/(1<<20))

	cfg.Server.StateDir = stateDir
	d := l.StartHook6d(ns, b.bins, cfg) // first start: page cache warm, as after a restart
	d.Stop()
	start = time.Now()
	d.Start()
	sc.RestartS = time.Since(start).Seconds()
	if pid, err := labbench.ServerPID(d.Process()); err == nil {
		if cpu, err := labbench.CPUTime(pid); err == nil {
			sc.RestartCPUS = cpu.Seconds()
		}
	}
	if sc.RSSLoaded, sc.AnonLoaded, err = settledRSS(d); err != nil {
		return fail(err)
	}
	sc.BytesPerLease = float64(sc.RSSLoaded-sc.RSSEmpty) / float64(n)
	sc.AnonPerLease = float64(sc.AnonLoaded-sc.AnonEmpty) / float64(n)
	if held, err := statusLeases(ctx, d); err != nil || held != n {
		return fail(fmt.Errorf("hook6d holds %d leases after restart (%v), want %d", held, err, n))
	}
	fmt.Printf("scale: restart %.2f s (%.2f s CPU), RSS %d MiB (%.0f bytes per lease, %.0f anonymous)\n",
		sc.RestartS, sc.RestartCPUS, sc.RSSLoaded>>20, sc.BytesPerLease, sc.AnonPerLease)

	start = time.Now()
	count, size, err := listJSON(ctx, d)
	if err != nil {
		return fail(err)
	}
	sc.ListS, sc.ListedLeases, sc.ListBytes = time.Since(start).Seconds(), count, size
	// The same list straight from the control API, without hook6ctl's
	// decoding and re-encoding, tells the daemon's share.
	start = time.Now()
	if sc.APIListBytes, err = getAPI(ctx, d.Socket, "/v1/leases"); err != nil {
		return fail(err)
	}
	sc.APIListS = time.Since(start).Seconds()
	start = time.Now()
	if _, err := d.Ctl().Run(ctx, "--timeout", "0", "lease", "delete", "::/0"); err != nil {
		return fail(err)
	}
	sc.DeleteS = time.Since(start).Seconds()
	if sc.LeasesAfterDel, err = statusLeases(ctx, d); err != nil {
		return fail(err)
	}
	sc.Load, _ = labbench.LoadAvg()
	fmt.Printf("scale: lease list %.2f s (%d leases; the API alone %.2f s), delete ::/0 %.2f s\n",
		sc.ListS, sc.ListedLeases, sc.APIListS, sc.DeleteS)
	d.Stop()
	return sc
}

// settledRSS waits for the daemon to settle and returns its VmRSS and
// the anonymous part of it.
func settledRSS(d *lab.Hook6d) (rss, anon int64, err error) {
	time.Sleep(settle)
	pid, err := labbench.ServerPID(d.Process())
	if err != nil {
		return 0, 0, err
	}
	if rss, err = labbench.RSS(pid); err != nil {
		return 0, 0, err
	}
	anon, err = labbench.RSSAnon(pid)
	return rss, anon, err
}

// statusLeases is the lease count `hook6ctl status -o json` reports.
func statusLeases(ctx context.Context, d *lab.Hook6d) (int, error) {
	out, err := d.Ctl().Run(ctx, "status", "-o", "json")
	if err != nil {
		return 0, err
	}
	var st struct {
		Leases int `json:"leases"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, fmt.Errorf("status %q: %w", out, err)
	}
	return st.Leases, nil
}

// listJSON runs `hook6ctl lease list -o json` and counts the leases of
// its output as they stream by.
func listJSON(ctx context.Context, d *lab.Hook6d) (int, int64, error) {
	ctl := d.Ctl()
	cmd := exec.CommandContext(ctx, ctl.Bin, "--socket", ctl.Socket, "--timeout", "0", "lease", "list", "-o", "json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("hook6ctl lease list: %w", err)
	}
	cr := &countReader{r: out}
	dec := json.NewDecoder(cr)
	n, derr := countArray(dec)
	_, _ = io.Copy(io.Discard, cr)
	if err := cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("hook6ctl lease list: %w", err)
	}
	if derr != nil {
		return 0, 0, fmt.Errorf("hook6ctl lease list output: %w", derr)
	}
	return n, cr.n, nil
}

// getAPI reads path from the control socket and returns the body's size.
func getAPI(ctx context.Context, socket, path string) (int64, error) {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://hook6"+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return n, nil
}

// countArray counts the elements of the JSON array dec reads.
func countArray(dec *json.Decoder) (int, error) {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return 0, fmt.Errorf("want a JSON array, got %v (%v)", tok, err)
	}
	n := 0
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return n, err
		}
		n++
	}
	_, err := dec.Token()
	return n, err
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
