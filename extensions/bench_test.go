package extensions

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/hooks"
)

// benchPoint measures one point: Has, and Run when something is attached,
// with a fresh Response as the server gives one per packet.
func benchPoint(b *testing.B, ch *hooks.Chain, p hooks.Point) {
	req, env := client{mac: macA, vendorClass: "acme-cpe"}.packet(b)
	c := &hooks.Context{Point: p, Request: req, Env: env}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if ch.Has(p) {
			c.Response = &hooks.Response{}
			if err := ch.Run(c); err != nil {
				b.Fatal(err)
			}
		}
	}
	checkStats(b, ch)
}

// checkStats fails the benchmark on a panic, and on failures beyond one
// call in a thousand: a loaded machine can stall a call past its budget,
// which is then counted as a timeout (and calls running in parallel in the
// stopped interpreter as errors), as in production.
func checkStats(b *testing.B, ch *hooks.Chain) {
	for name, st := range ch.Stats() {
		if st.Panics > 0 || st.Errors+st.Timeouts > st.Calls/1000 {
			b.Fatalf("%s failed: %+v", name, st)
		}
		if st.Timeouts > 0 {
			b.Logf("%s: %d of %d calls ran past the budget", name, st.Timeouts, st.Calls)
		}
	}
}

func benchChain(b *testing.B, specs ...*config.Extension) *hooks.Chain {
	ch, err := Build(specs, BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ch.Close() })
	return ch
}

func BenchmarkPointNoExtension(b *testing.B) {
	benchPoint(b, benchChain(b), hooks.PrePacketEncode)
}

func BenchmarkPointEmptyScript(b *testing.B) {
	p := filepath.Join(b.TempDir(), "empty.go")
	src := "package main\n\nimport \"github.com/hook6/hook6/hooks\"\n\nfunc PrePacketEncode(c *hooks.Context) error { return nil }\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	benchPoint(b, benchChain(b, &config.Extension{Name: "empty", Script: p}), hooks.PrePacketEncode)
}

func BenchmarkPointRealisticScript(b *testing.B) {
	benchPoint(b, benchChain(b, &config.Extension{Name: "prefer", Script: examplePath(b, "preference.go"),
		InitArgs: map[string]string{"vendor-class": "acme-cpe", "duid-prefix": "0003"}}), hooks.PrePacketEncode)
}

func BenchmarkPointRealisticScriptParallel(b *testing.B) {
	ch := benchChain(b, &config.Extension{Name: "prefer", Script: examplePath(b, "preference.go"),
		InitArgs: map[string]string{"vendor-class": "acme-cpe", "duid-prefix": "0003"}})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req, env := client{mac: macA, vendorClass: "acme-cpe"}.packet(b)
		c := &hooks.Context{Point: hooks.PrePacketEncode, Request: req, Env: env}
		for pb.Next() {
			c.Response = &hooks.Response{}
			if err := ch.Run(c); err != nil {
				b.Error(err)
				return
			}
		}
	})
	checkStats(b, ch)
}

func BenchmarkPointBuiltin(b *testing.B) {
	benchPoint(b, benchChain(b, &config.Extension{Name: "pref", Builtin: "preference",
		InitArgs: map[string]string{"value": "255", "when-env": hooks.KeyVendorClass, "equals": "acme-cpe"}}), hooks.PrePacketEncode)
}
