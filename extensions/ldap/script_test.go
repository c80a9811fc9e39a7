package ldap_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/script"
	"github.com/hook6/hook6/ldapsource/ldaptest"
)

// TestExampleScript runs examples/ldap/async-ldap.go, the async cache
// written as a script speaking LDAP itself, against slapd: first Solicit
// dropped, the retransmission served from the directory, unknown clients
// answered "not found", directory down: cached clients served, the rest
// dropped.
func TestExampleScript(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	sc, err := script.Load(script.Options{
		Name: "async-ldap",
		Path: scriptPath(), Output: os.Stderr,
		Points: []hooks.Point{hooks.PostPacketDecode, hooks.GenerateLease, hooks.PrePacketEncode},
		Args: map[string]string{
			"address":       s.URL[len("ldap://"):],
			"bind-dn":       ldaptest.BindDN,
			"password-file": s.PasswordFile,
			"base-dn":       ldaptest.ClientsDN,
			"attributes":    "hook6DelegatedPrefix=ldap.prefix, hook6Address=ldap.address",
			"ttl":           "1s",
		},
		Allow: script.Allow{Network: true, Goroutines: true, Files: []string{s.PasswordFile}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ch := chain(t, sc, hooks.FailContinue)

	// retry sends the client's packet until it is served, as a client
	// retransmits; it returns the served packet and how many were dropped.
	retry := func(duid string) (result, int) {
		t.Helper()
		dropped := 0
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); dropped++ {
			r := packet(ch, duid)
			if r.err != nil {
				t.Fatalf("%s: %v", duid, r.err)
			}
			if !r.dropped {
				return r, dropped
			}
			if !r.skipped {
				t.Fatalf("%s: dropped packet without skip-lease", duid)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s never served", duid)
		return result{}, 0
	}
	r, dropped := retry(duid1)
	if dropped == 0 || r.env.Value("ldap.prefix") != prefix1 || r.env.Value("ldap.address") != addr1 {
		t.Fatalf("client 1: %d dropped, env %v", dropped, r.env.Map())
	}
	if r, dropped := retry(duid1); dropped != 0 || r.env.Value("ldap.prefix") != prefix1 {
		t.Fatalf("cached client 1: %d dropped, env %v", dropped, r.env.Map())
	}
	if r, _ := retry("00030001ffffffffffff"); r.env.Value("ldap.prefix") != "" {
		t.Fatalf("unknown client got %v", r.env.Map())
	}
	retry(duid2)

	s.Stop()
	time.Sleep(1100 * time.Millisecond) // entries go stale
	packet(ch, duid1)                   // its refresh fails
	time.Sleep(100 * time.Millisecond)
	if r, dropped := retry(duid2); dropped != 0 || r.env.Value("ldap.prefix") != prefix2 {
		t.Fatalf("stale client 2 with slapd down: %d dropped, env %v", dropped, r.env.Map())
	}
	for range 5 {
		if r := packet(ch, "0003000100163e0000ff"); !r.dropped {
			t.Fatalf("uncached client served with slapd down: %v", r.env.Map())
		}
	}
	s.Restart()
	if r, _ := retry(duid1); r.env.Value("ldap.prefix") != prefix1 {
		t.Fatalf("after restart: %v", r.env.Map())
	}
}

func scriptPath() string {
	if p := os.Getenv("SCRIPT"); p != "" {
		return p
	}
	return filepath.Join(ldaptest.ExampleDir(), "async-ldap.go")
}
