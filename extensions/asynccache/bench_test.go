package asynccache

import (
	"fmt"
	"testing"

	"github.com/hook6/hook6/hooks"
)

// warm builds an extension over a fake source and caches n clients.
func warm(b *testing.B, n int) *Extension {
	b.Helper()
	src := newFake()
	for i := range n {
		src.set(fmt.Sprintf("%020x", i), map[string]string{"ext.prefix": "2001:db8:8000:100::/56", "ext.address": "2001:db8:1::100"})
	}
	x, err := Build("cache", nil, NewArgs(map[string]string{"key-fields": "duid", "workers": "8", "queue": "100000"}), src)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { x.Close() })
	c := x.Cache()
	for i := range n {
		d := fmt.Sprintf("%020x", i)
		c.Lookup(d, fieldsOf(d))
	}
	for c.Stats().InFlight != 0 {
		// wait for the workers
	}
	return x
}

// BenchmarkCacheHit is Cache.Lookup of a fresh entry among 100,000.
func BenchmarkCacheHit(b *testing.B) {
	x := warm(b, 100000)
	c := x.Cache()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("%020x", i*97)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if r := c.Lookup(keys[i&1023], nil); r.State != Fresh {
			b.Fatal(r.State)
		}
	}
}

// BenchmarkHitPath is the packet's whole cache-hit path: the chain runs
// the extension at post-packet-decode (key from the env, lookup, two
// values into the env) and at pre-packet-encode.
func BenchmarkHitPath(b *testing.B) {
	x := warm(b, 100000)
	ch, err := hooks.NewChain([]hooks.Member{{Extension: x}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	env := hooks.NewEnv()
	c := &hooks.Context{Env: env}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("%020x", i*97)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		env.Reset()
		env.SetServer(hooks.KeyClientDUID, keys[i&1023])
		c.Point = hooks.PostPacketDecode
		if err := ch.Run(c); err != nil {
			b.Fatal(err)
		}
		c.Point = hooks.PrePacketEncode
		if err := ch.Run(c); err != nil || env.IsTrue(hooks.KeyDrop) {
			b.Fatal("dropped on a hit")
		}
	}
}

// BenchmarkHitParallel is BenchmarkCacheHit from every core at once (the
// LRU has one lock).
func BenchmarkCacheHitParallel(b *testing.B) {
	x := warm(b, 100000)
	c := x.Cache()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			d := fmt.Sprintf("%020x", (i*97)%100000)
			if r := c.Lookup(d, nil); r.State != Fresh {
				b.Fatal(r.State)
			}
			i++
		}
	})
}

// BenchmarkHandleHit is the extension's own hit path without the chain:
// Handle at post-packet-decode and at pre-packet-encode.
func BenchmarkHandleHit(b *testing.B) {
	x := warm(b, 100000)
	env := hooks.NewEnv()
	c := &hooks.Context{Env: env}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("%020x", i*97)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		env.Reset()
		env.SetServer(hooks.KeyClientDUID, keys[i&1023])
		c.Point = hooks.PostPacketDecode
		env.AtPoint(c.Point)
		if err := x.Handle(c); err != nil {
			b.Fatal(err)
		}
		c.Point = hooks.PrePacketEncode
		env.AtPoint(c.Point)
		if err := x.Handle(c); err != nil || env.IsTrue(hooks.KeyDrop) {
			b.Fatal("dropped on a hit")
		}
	}
}
