// Package ldaptest runs a real OpenLDAP slapd for tests: its own config
// and mdb database in a temporary directory, the hook6 schema and LDIF
// fixture of examples/ldap, listening on loopback on a free port. Tests can
// stop and restart it (same port, same data) and edit entries as the
// directory manager.
//
// It needs the Debian packages slapd and ldap-utils (slapd, slapadd).
package ldaptest

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Names of the fixture (examples/ldap/hook6.ldif).
const (
	Suffix       = "dc=example,dc=org"
	ClientsDN    = "ou=dhcp,dc=example,dc=org"
	AdminDN      = "cn=admin,dc=example,dc=org"
	AdminPass    = "admin-secret"
	BindDN       = "cn=hook6,ou=services,dc=example,dc=org"
	BindPassword = "hook6-example-secret"
)

// Options changes what Start sets up.
type Options struct {
	// TLS adds an ldaps:// listener and StartTLS with a fresh CA.
	TLS bool
	// LDIF is added to the fixture before slapd starts (slapadd), e.g.
	// thousands of generated clients.
	LDIF string
	// Command, when set, makes the command that runs slapd, e.g. inside a
	// network namespace (lab.Netns.Command). The test reaches slapd over
	// its ldapi:// unix socket, which every namespace sees.
	Command func(name string, args ...string) *exec.Cmd
}

// Server is a running (or stopped) slapd.
type Server struct {
	Dir      string // config, database, logs, password file, certificates
	URL      string // ldap://127.0.0.1:port
	LDAPSURL string // ldaps://127.0.0.1:port when Options.TLS
	// PasswordFile holds BindPassword, for ldapsource.Config.PasswordFile.
	PasswordFile string
	// CAFile is the PEM CA that signed the server certificate (TLS only).
	CAFile string
	// LDAPIURL is slapd's unix socket, ldapi://…, used by Admin.
	LDAPIURL string

	t      testing.TB
	opt    Options
	conf   string
	listen string
	cmd    *exec.Cmd
	exit   chan struct{}
	log    *syncBuffer
}

// ExampleDir returns the absolute path of examples/ldap in this checkout.
func ExampleDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "ldap")
}

// Start sets up and starts slapd; it is stopped when the test ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	for _, bin := range []string{"slapd", "slapadd"} {
		if _, err := lookPath(bin); err != nil {
			t.Fatalf("%s not found (install with: DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils): %v", bin, err)
		}
	}
	s := &Server{Dir: t.TempDir(), t: t, opt: opt}
	s.PasswordFile = filepath.Join(s.Dir, "bind.password")
	must(t, os.WriteFile(s.PasswordFile, []byte(BindPassword+"\n"), 0o600))
	must(t, os.Mkdir(filepath.Join(s.Dir, "db"), 0o700))
	s.URL = "ldap://" + freeAddr(t)
	s.LDAPIURL = "ldapi://" + url.PathEscape(filepath.Join(s.Dir, "ldapi"))
	listen := s.URL + "/ " + s.LDAPIURL
	var tlsConf string
	if opt.TLS {
		s.LDAPSURL = "ldaps://" + freeAddr(t)
		listen += " " + s.LDAPSURL + "/"
		s.CAFile, tlsConf = writeCerts(t, s.Dir)
	}
	s.conf = filepath.Join(s.Dir, "slapd.conf")
	must(t, os.WriteFile(s.conf, []byte(s.slapdConf(tlsConf)), 0o600))
	s.slapadd(filepath.Join(ExampleDir(), "hook6.ldif"))
	if opt.LDIF != "" {
		extra := filepath.Join(s.Dir, "extra.ldif")
		must(t, os.WriteFile(extra, []byte(opt.LDIF), 0o600))
		s.slapadd(extra)
	}
	s.listen = listen
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

func lookPath(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	return exec.LookPath(filepath.Join("/usr/sbin", bin))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().String()
}

func (s *Server) slapdConf(tlsConf string) string {
	return fmt.Sprintf(`include /etc/ldap/schema/core.schema
include %s
pidfile %s
argsfile %s
modulepath /usr/lib/ldap
moduleload back_mdb
%s
database mdb
maxsize 1073741824
suffix "%s"
rootdn "%s"
rootpw %s
directory %s
index objectClass eq
index hook6ClientDUID eq
index hook6RemoteID eq
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
`, filepath.Join(ExampleDir(), "hook6.schema"), filepath.Join(s.Dir, "slapd.pid"),
		filepath.Join(s.Dir, "slapd.args"), tlsConf, Suffix, AdminDN, AdminPass, filepath.Join(s.Dir, "db"))
}

func (s *Server) slapadd(ldif string) {
	bin, _ := lookPath("slapadd")
	out, err := exec.Command(bin, "-q", "-f", s.conf, "-l", ldif).CombinedOutput()
	if err != nil {
		s.t.Fatalf("slapadd %s: %v\n%s", ldif, err, out)
	}
}

// syncBuffer is a bytes.Buffer slapd's output can be written to while a
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
