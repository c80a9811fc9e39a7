package ldapsource_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/hook6/hook6/ldapsource"
	"github.com/hook6/hook6/ldapsource/ldaptest"
)

// The fixture's clients (examples/ldap/hook6.ldif).
const (
	duid1   = "0003000100163e000001"
	prefix1 = "2001:db8:8000:100::/56"
	addr1   = "2001:db8:1::100"
	duid2   = "0003000100163e000002"
	remote2 = "0a0b0c"
	prefix2 = "2001:db8:8000:200::/56"
)

func config(s *ldaptest.Server) ldapsource.Config {
	return ldapsource.Config{
		URLs:         []string{s.URL},
		BindDN:       ldaptest.BindDN,
		PasswordFile: s.PasswordFile,
		BaseDN:       ldaptest.ClientsDN,
		Filter:       "(&(objectClass=hook6Client)(hook6ClientDUID={duid}))",
		Attributes: map[string]string{
			"hook6DelegatedPrefix": "ldap.prefix",
			"hook6Address":         "ldap.address",
			"dn":                   "ldap.dn",
		},
		Timeout:     2 * time.Second,
		DialTimeout: 2 * time.Second,
		MaxBackoff:  200 * time.Millisecond,
	}
}

func newSource(t *testing.T, cfg ldapsource.Config) *ldapsource.Source {
	t.Helper()
	src, err := ldapsource.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func lookup(t *testing.T, src *ldapsource.Source, fields map[string]string) (map[string]string, bool) {
	t.Helper()
	env, found, err := src.Lookup(context.Background(), fields)
	if err != nil {
		t.Fatalf("Lookup(%v): %v", fields, err)
	}
	return env, found
}

func TestLookup(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	src := newSource(t, config(s))

	env, found := lookup(t, src, map[string]string{"duid": duid1})
	if !found {
		t.Fatalf("client %s not found", duid1)
	}
	want := map[string]string{"ldap.prefix": prefix1, "ldap.address": addr1, "ldap.dn": ldaptest.ClientDN("cpe-1")}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q (env %v)", k, env[k], v, env)
		}
	}
	// Case does not matter to the directory (caseIgnoreIA5Match).
	if _, found := lookup(t, src, map[string]string{"duid": strings.ToUpper(duid1)}); !found {
		t.Errorf("upper-case DUID not found")
	}
	env, found = lookup(t, src, map[string]string{"duid": duid2})
	if !found || env["ldap.prefix"] != prefix2 {
		t.Fatalf("client 2: %v %v", env, found)
	}
	if _, ok := env["ldap.address"]; ok {
		t.Errorf("client 2 has no address attribute, got %q", env["ldap.address"])
	}
	if env, found := lookup(t, src, map[string]string{"duid": "00030001ffffffffffff"}); found {
		t.Fatalf("unknown client found: %v", env)
	}
	if env, found := lookup(t, src, map[string]string{"remote-id": remote2}); found {
		t.Fatalf("lookup without the duid field found %v", env)
	}
	st := src.Stats()
	if st.Found != 3 || st.NotFound != 2 || st.Errors != 0 || st.Searches != 4 || st.Dials != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestLookupInjection: a DUID or remote-id chosen to widen the filter finds
// nothing, although the filter it would make unescaped matches every
// client.
func TestLookupInjection(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	cfg := config(s)
	cfg.Filter = "(&(objectClass=hook6Client)(hook6ClientDUID={duid})(hook6RemoteID={remote-id}))"
	src := newSource(t, cfg)

	if _, found := lookup(t, src, map[string]string{"duid": duid2, "remote-id": remote2}); !found {
		t.Fatalf("legitimate lookup failed")
	}
	for _, f := range []map[string]string{
		{"duid": "*", "remote-id": "*"},
		{"duid": "*)(hook6ClientDUID=*", "remote-id": "*"},
		{"duid": duid2 + ")(|(hook6RemoteID=*", "remote-id": "x))(objectClass=*"},
		{"duid": "*)(uid=*", "remote-id": "*)(uid=*"},
		{"duid": "0003000100163e00000*", "remote-id": remote2},
	} {
		env, found, err := src.Lookup(context.Background(), f)
		if found || err != nil {
			t.Errorf("Lookup(%v) = %v, %v, %v: the value changed the filter", f, env, found, err)
		}
	}
	// The same strings spliced in raw do match: the test would catch a
	// missing escape.
	admin := s.Admin()
	res, err := admin.SearchWithPaging(newSearch("(&(objectClass=hook6Client)(hook6ClientDUID=*)(hook6RemoteID=*))"), 10)
	if err != nil || len(res.Entries) == 0 {
		t.Fatalf("raw wildcard filter: %v entries, %v", len(res.Entries), err)
	}
}

func TestBindFailures(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config(s)
	cfg.PasswordFile = wrong
	src := newSource(t, cfg)
	_, _, err := src.Lookup(context.Background(), map[string]string{"duid": duid1})
	if err == nil || !strings.Contains(err.Error(), "Invalid Credentials") {
		t.Fatalf("wrong password: %v", err)
	}

	// Anonymous: the directory's ACL hides the clients.
	cfg = config(s)
	cfg.BindDN, cfg.PasswordFile = "", ""
	anon := newSource(t, cfg)
	if _, found := lookup(t, anon, map[string]string{"duid": duid1}); found {
		t.Fatalf("anonymous lookup found the client")
	}

	cfg = config(s)
	cfg.PasswordFile = filepath.Join(t.TempDir(), "missing")
	if _, err := ldapsource.New(cfg); err == nil {
		t.Fatalf("New accepted a missing password file")
	}
}

func TestPasswordRotation(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config(s)
	cfg.PasswordFile = pw
	src := newSource(t, cfg)
	if _, _, err := src.Lookup(context.Background(), map[string]string{"duid": duid1}); err == nil {
		t.Fatalf("bind with the old password worked")
	}
	if err := os.WriteFile(pw, []byte(ldaptest.BindPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond) // past the back-off
	if _, found := lookup(t, src, map[string]string{"duid": duid1}); !found {
		t.Fatalf("not found after the password file was fixed")
	}
}

func TestTLS(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{TLS: true})
	cases := []struct {
		name     string
		url      string
		startTLS bool
	}{{"ldaps", s.LDAPSURL, false}, {"starttls", s.URL, true}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(s)
			cfg.URLs, cfg.StartTLS = []string{c.url}, c.startTLS
			cfg.TLS.CAFile = s.CAFile
			if _, found := lookup(t, newSource(t, cfg), map[string]string{"duid": duid1}); !found {
				t.Fatalf("not found over %s", c.name)
			}
			// Without the CA the server's certificate is refused.
			cfg.TLS.CAFile = ""
			_, _, err := newSource(t, cfg).Lookup(context.Background(), map[string]string{"duid": duid1})
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("untrusted certificate accepted: %v", err)
			}
			cfg.TLS.InsecureSkipVerify = true
			if _, found := lookup(t, newSource(t, cfg), map[string]string{"duid": duid1}); !found {
				t.Fatalf("not found with insecure-skip-verify")
			}
		})
	}
	cfg := config(s)
	cfg.URLs, cfg.StartTLS = []string{s.LDAPSURL}, true
	if _, err := ldapsource.New(cfg); err == nil {
		t.Fatalf("ldaps:// with start-tls accepted")
	}
}

// TestFailover: the first URL is dead, the second answers.
func TestFailover(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	cfg := config(s)
	cfg.URLs = []string{"ldap://127.0.0.1:1", s.URL}
	if _, found := lookup(t, newSource(t, cfg), map[string]string{"duid": duid1}); !found {
		t.Fatalf("not found through the second URL")
	}
}

// TestRestart: while slapd is down lookups fail (fast, during back-off);
// once it is back the pool reconnects by itself, including connections
// that were open when slapd went away.
func TestRestart(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	cfg := config(s)
	cfg.PoolSize = 3
	src := newSource(t, cfg)
	var wg sync.WaitGroup
	for range 3 { // open every pooled connection
		wg.Go(func() { lookup(t, src, map[string]string{"duid": duid1}) })
	}
	wg.Wait()
	s.Stop()
	for range 20 {
		_, _, err := src.Lookup(context.Background(), map[string]string{"duid": duid1})
		if !errors.Is(err, ldapsource.ErrUnavailable) {
			t.Fatalf("slapd down: %v, want ErrUnavailable", err)
		}
	}
	s.Restart()
	time.Sleep(250 * time.Millisecond) // past the back-off
	before := src.Stats().Errors
	for range 10 {
		if _, found := lookup(t, src, map[string]string{"duid": duid1}); !found {
			t.Fatalf("not found after restart")
		}
	}
	if st := src.Stats(); st.Errors != before {
		t.Fatalf("errors after recovery: %+v", st)
	}
}

// TestServerClosesIdle: a connection the server dropped while idle is
// replaced without the caller seeing an error.
func TestServerClosesIdle(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	cfg := config(s)
	cfg.PoolSize = 1
	src := newSource(t, cfg)
	lookup(t, src, map[string]string{"duid": duid1})
	s.Stop()
	s.Restart()
	if _, found := lookup(t, src, map[string]string{"duid": duid1}); !found {
		t.Fatalf("not found on the replaced connection")
	}
}

func TestAmbiguous(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	s.AddClient("dup", map[string]string{"hook6ClientDUID": duid1, "hook6DelegatedPrefix": "2001:db8:8000:900::/56"})
	_, _, err := newSource(t, config(s)).Lookup(context.Background(), map[string]string{"duid": duid1})
	if !errors.Is(err, ldapsource.ErrAmbiguous) {
		t.Fatalf("two entries for one DUID: %v", err)
	}
}

func TestLookupCancelled(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	cfg := config(s)
	cfg.PoolSize = 1
	src := newSource(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := src.Lookup(ctx, map[string]string{"duid": duid1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled lookup: %v", err)
	}
	if _, found := lookup(t, src, map[string]string{"duid": duid1}); !found {
		t.Fatalf("not found after a cancelled lookup")
	}
}

func TestConfigErrors(t *testing.T) {
	base := ldapsource.Config{URLs: []string{"ldap://127.0.0.1"}, BaseDN: "dc=x", Filter: "(a={duid})"}
	for name, mod := range map[string]func(*ldapsource.Config){
		"no url":       func(c *ldapsource.Config) { c.URLs = nil },
		"bad scheme":   func(c *ldapsource.Config) { c.URLs = []string{"http://x"} },
		"no host":      func(c *ldapsource.Config) { c.URLs = []string{"ldap://"} },
		"no base":      func(c *ldapsource.Config) { c.BaseDN = "" },
		"bad base":     func(c *ldapsource.Config) { c.BaseDN = "not a dn" },
		"bad scope":    func(c *ldapsource.Config) { c.Scope = "deep" },
		"bad filter":   func(c *ldapsource.Config) { c.Filter = "(a={duid}" },
		"no password":  func(c *ldapsource.Config) { c.BindDN = "cn=x" },
		"empty attr":   func(c *ldapsource.Config) { c.Attributes = map[string]string{"a": ""} },
		"missing ca":   func(c *ldapsource.Config) { c.TLS.CAFile = "/nonexistent" },
		"empty filter": func(c *ldapsource.Config) { c.Filter = "" },
	} {
		c := base
		mod(&c)
		if _, err := ldapsource.New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ldapsource.New(base); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

func newSearch(filter string) *ldap.SearchRequest {
	return ldap.NewSearchRequest(ldaptest.ClientsDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, []string{"dn"}, nil)
}
