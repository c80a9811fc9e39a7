package plugin

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/plugin/pkg"
	pb "github.com/hook6/hook6/hooks/plugin/proto"
)

// The benchmarks put one generate-lease call through the example plugin
// (go-plugin, AutoMTLS, the Context converted both ways) beside a bare
// gRPC unary call of the same request over a unix socket to another
// process (no go-plugin, no TLS, an empty answer), and time serialising
// the Context on its own. BenchmarkPluginVsBareGRPC interleaves the calls
// so both see the same machine load, and reports p50/p99 of each, their
// ratio and the serialising share: on hook6's side alone and on both
// sides, timed between the calls (caches as cold as in a server).

// openExample starts the example plugin with a one-entry table.
func openExample(b *testing.B) *Extension {
	sum, err := pkg.FileSHA256(exampleBin)
	if err != nil {
		b.Fatal(err)
	}
	e, err := Open(context.Background(), Options{Path: exampleBin, SHA256: sum, Logger: slog.New(slog.DiscardHandler),
		Args: map[string]string{"0a0b0c": "2001:db8:8000:4200::/56"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

// startBare runs the fault plugin as a bare gRPC server and dials it;
// withTLS has both ends speak TLS.
func startBare(b *testing.B, withTLS bool) pb.ExtensionClient {
	sock := filepath.Join(b.TempDir(), "bare.sock")
	cmd := exec.Command(faultBin)
	cmd.Env = []string{"FAULTPLUGIN_BARE_GRPC=" + sock}
	creds := insecure.NewCredentials()
	if withTLS {
		cmd.Env = append(cmd.Env, "FAULTPLUGIN_BARE_TLS=1")
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}) // a throwaway benchmark certificate
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if i == 500 {
			b.Fatal("bare gRPC server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(creds))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return pb.NewExtensionClient(conn)
}

// leaseContext is a generate-lease Context the example plugin answers;
// reset makes it ready for the next call.
func leaseContext() (*hooks.Context, func()) {
	c := sampleContext(hooks.GenerateLease)
	return c, func() {
		c.Allocation.Candidate = netip.Prefix{}
		c.Env.Delete("remoteid-prefix.lease")
	}
}

func callPlugin(b *testing.B, e *Extension, c *hooks.Context) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	c.Ctx = ctx
	err := e.Handle(c)
	cancel()
	if err != nil || !c.Allocation.Candidate.IsValid() {
		b.Fatalf("plugin call: %v %v", err, c.Allocation.Candidate)
	}
}

func callBare(b *testing.B, bare pb.ExtensionClient, req *pb.HandleRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := bare.Handle(ctx, req)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
}

// serialise does in one process what a plugin call adds to a bare call:
// the Context to protobuf and back on both sides, and the answer too. It
// returns the time spent on hook6's side (Context to wire, answer applied)
// and in total (the plugin's side too: wire to Context, changes to wire).
func serialise(b *testing.B, c *hooks.Context) (host, total time.Duration) {
	t0 := time.Now()
	wireReq, err := proto.Marshal(mustEncode(b, c, slog.LevelInfo))
	if err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	var in pb.HandleRequest
	if err := proto.Unmarshal(wireReq, &in); err != nil {
		b.Fatal(err)
	}
	env := envPool.Get().(*hooks.Env)
	defer func() { env.Reset(); envPool.Put(env) }()
	pc, err := decodeRequest(context.Background(), &in, nil, env)
	if err != nil {
		b.Fatal(err)
	}
	pc.Allocation.Candidate = netip.MustParsePrefix("2001:db8:8000:4200::/56")
	pc.Env.Set("remoteid-prefix.lease", "2001:db8:8000:4200::/56")
	wireResp, err := proto.Marshal(encodeResponse(pc, in.Env, nil, nil))
	if err != nil {
		b.Fatal(err)
	}
	t2 := time.Now()
	var out pb.HandleResponse
	if err := proto.Unmarshal(wireResp, &out); err != nil {
		b.Fatal(err)
	}
	if err := applyResponse(c, &out, nil); err != nil {
		b.Fatal(err)
	}
	t3 := time.Now()
	return t1.Sub(t0) + t3.Sub(t2), t3.Sub(t0)
}

func percentile(ds []time.Duration, q float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))].Nanoseconds()) / 1e3
}

func BenchmarkPluginPoint(b *testing.B) {
	e := openExample(b)
	c, reset := leaseContext()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		reset()
		start := time.Now()
		callPlugin(b, e, c)
		lat = append(lat, time.Since(start))
	}
	b.ReportMetric(percentile(lat, 0.5), "p50-µs")
	b.ReportMetric(percentile(lat, 0.99), "p99-µs")
}

func BenchmarkBareGRPC(b *testing.B) {
	bare := startBare(b, false)
	c, _ := leaseContext()
	req := mustEncode(b, c, slog.LevelInfo)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		callBare(b, bare, req)
		lat = append(lat, time.Since(start))
	}
	b.ReportMetric(percentile(lat, 0.5), "p50-µs")
	b.ReportMetric(percentile(lat, 0.99), "p99-µs")
}

func BenchmarkSerialiseContext(b *testing.B) {
	c, reset := leaseContext()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		reset()
		serialise(b, c)
	}
}

// BenchmarkPluginVsBareGRPC alternates a plugin call and a bare call to a
// server process, either plain ("bare=plain") or over TLS ("bare=tls").
// The two take turns going first: the first call after a pause is the
// slower, and neither should always be it. Each server process gets half
// of the calls, so both are as warm.
func BenchmarkPluginVsBareGRPC(b *testing.B) {
	for _, withTLS := range []bool{false, true} {
		name := "bare=plain"
		if withTLS {
			name = "bare=tls"
		}
		b.Run(name, func(b *testing.B) { pluginVsBare(b, withTLS) })
	}
}

func pluginVsBare(b *testing.B, withTLS bool) {
	e := openExample(b)
	bare := startBare(b, withTLS)
	c, reset := leaseContext()
	req := mustEncode(b, c, slog.LevelInfo)
	calls := [2]func(){
		func() { reset(); callPlugin(b, e, c) },
		func() { callBare(b, bare, req) },
	}
	var lat [2][]time.Duration
	var serHost, serTotal []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range calls {
			k := (i + j) % len(calls)
			start := time.Now()
			calls[k]()
			lat[k] = append(lat[k], time.Since(start))
		}
		reset()
		host, total := serialise(b, c)
		serHost, serTotal = append(serHost, host), append(serTotal, total)
	}
	b.StopTimer()
	p50, bare50 := percentile(lat[0], 0.5), percentile(lat[1], 0.5)
	b.ReportMetric(p50, "plugin-p50-µs")
	b.ReportMetric(percentile(lat[0], 0.99), "plugin-p99-µs")
	b.ReportMetric(bare50, "bare-p50-µs")
	b.ReportMetric(percentile(lat[1], 0.99), "bare-p99-µs")
	b.ReportMetric(p50/bare50, "ratio-p50")
	b.ReportMetric(percentile(lat[0], 0.99)/percentile(lat[1], 0.99), "ratio-p99")
	b.ReportMetric(percentile(serHost, 0.5), "ser-host-p50-µs")
	b.ReportMetric(100*percentile(serHost, 0.5)/p50, "ser-host-%")
	b.ReportMetric(100*percentile(serTotal, 0.5)/p50, "ser-both-sides-%")
}
