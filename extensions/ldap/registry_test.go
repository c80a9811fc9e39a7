package ldap_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/extensions"
	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/ldapsource/ldaptest"
)

// TestRegistry builds the reference's chain from config through the
// registry: ldap-cache puts the directory's prefix in the env, env-lease
// gives it at generate-lease; the first Solicit is dropped (skip-lease,
// then drop), its retransmission gets the directory's prefix as the lease.
func TestRegistry(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	ch, err := extensions.Build([]*config.Extension{
		{Name: "directory", Builtin: "ldap-cache", Points: []string{"post-packet-decode", "generate-lease", "pre-packet-encode"},
			InitArgs: args(s, nil)},
		{Name: "lease-from-directory", Builtin: "env-lease", Points: []string{"generate-lease"},
			InitArgs: map[string]string{"key": "ldap.address", "pd-key": "ldap.prefix"}},
	}, extensions.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()

	solicit := func() (lease netip.Prefix, dropped bool) {
		env := hooks.NewEnv()
		env.SetServer(hooks.KeyClientDUID, duid1)
		req := &hooks.Request{MessageType: "SOLICIT"}
		if err := ch.Run(&hooks.Context{Point: hooks.PostPacketDecode, Env: env, Request: req}); err != nil {
			t.Fatal(err)
		}
		alloc := &hooks.Allocation{IA: hooks.IA{Type: hooks.IAPD, IAID: 1}, PrefixName: "lan-pd",
			From: netip.MustParsePrefix("2001:db8:8000::/40"), Length: 56}
		if err := ch.Run(&hooks.Context{Point: hooks.GenerateLease, Env: env, Request: req, Allocation: alloc}); err != nil {
			t.Fatal(err)
		}
		if err := ch.Run(&hooks.Context{Point: hooks.PrePacketEncode, Env: env, Request: req, Response: &hooks.Response{}}); err != nil {
			t.Fatal(err)
		}
		return alloc.Candidate, env.IsTrue(hooks.KeyDrop)
	}
	if lease, dropped := solicit(); !dropped || lease.IsValid() {
		t.Fatalf("first Solicit: lease %v dropped %v", lease, dropped)
	}
	if ch.Stats()["directory"].Calls != 3 {
		t.Fatalf("directory called %d times", ch.Stats()["directory"].Calls)
	}
	var lease netip.Prefix
	var dropped = true
	for i := 0; dropped && i < 200; i++ { // retransmissions until the answer is in
		time.Sleep(10 * time.Millisecond)
		lease, dropped = solicit()
	}
	if dropped || lease != netip.MustParsePrefix(prefix1) {
		t.Fatalf("retransmission: lease %v dropped %v", lease, dropped)
	}
}
