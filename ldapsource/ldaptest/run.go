package ldaptest

import (
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Restart starts slapd again (on the same addresses, with the same data)
// and waits until it accepts connections. Start calls it once.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatalf("slapd is already running")
	}
	bin, _ := lookPath("slapd")
	s.log = &syncBuffer{}
	args := []string{"-f", s.conf, "-h", s.listen, "-d", "0"}
	cmd := exec.Command(bin, args...)
	if s.opt.Command != nil {
		cmd = s.opt.Command(bin, args...)
	}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting slapd: %v", err)
	}
	exit := make(chan struct{})
	go func() { cmd.Wait(); close(exit) }()
	s.cmd, s.exit = cmd, exit
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := ldap.DialURL(s.LDAPIURL); err == nil {
			c.Close()
			return
		}
		select {
		case <-exit:
			s.cmd = nil
			s.t.Fatalf("slapd exited at start-up: %s", s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("slapd does not answer on %s after 15s: %s", s.LDAPIURL, s.log.String())
		}
	}
}

// Stop stops slapd (SIGTERM, then SIGKILL after 10s) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exit:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

// Running reports whether slapd runs.
func (s *Server) Running() bool { return s.cmd != nil }

// Log returns what slapd printed since it was last started.
func (s *Server) Log() string { return s.log.String() }

// Admin connects and binds as the directory manager. The connection is
// closed when the test ends.
func (s *Server) Admin() *ldap.Conn {
	s.t.Helper()
	c, err := ldap.DialURL(s.LDAPIURL)
	if err != nil {
		s.t.Fatalf("connecting to slapd: %v", err)
	}
	if err := c.Bind(AdminDN, AdminPass); err != nil {
		c.Close()
		s.t.Fatalf("binding as %s: %v", AdminDN, err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// ClientDN is the DN of the fixture client with cn.
func ClientDN(cn string) string { return "cn=" + ldap.EscapeDN(cn) + "," + ClientsDN }

// AddClient adds a hook6Client entry under ClientsDN with the attributes
// given (name → value).
func (s *Server) AddClient(cn string, attrs map[string]string) {
	s.t.Helper()
	req := ldap.NewAddRequest(ClientDN(cn), nil)
	req.Attribute("objectClass", []string{"hook6Client"})
	req.Attribute("cn", []string{cn})
	for k, v := range attrs {
		req.Attribute(k, []string{v})
	}
	if err := s.Admin().Add(req); err != nil {
		s.t.Fatalf("adding %s: %v", cn, err)
	}
}

// SetAttr replaces an attribute of the client entry cn.
func (s *Server) SetAttr(cn, attr string, values ...string) {
	s.t.Helper()
	req := ldap.NewModifyRequest(ClientDN(cn), nil)
	req.Replace(attr, values)
	if err := s.Admin().Modify(req); err != nil {
		s.t.Fatalf("modifying %s: %v", cn, err)
	}
}

// DeleteClient removes the client entry cn.
func (s *Server) DeleteClient(cn string) {
	s.t.Helper()
	if err := s.Admin().Del(ldap.NewDelRequest(ClientDN(cn), nil)); err != nil {
		s.t.Fatalf("deleting %s: %v", cn, err)
	}
}

// ClientsLDIF generates n hook6Client entries: cn client-<i>, DUID and
// delegated prefix as GeneratedClient gives them. They suit Options.LDIF
// for tests and benchmarks with many clients.
func ClientsLDIF(n int) string {
	var b strings.Builder
	for i := range n {
		duid, prefix := GeneratedClient(i)
		b.WriteString("dn: cn=client-")
		b.WriteString(itoa(i))
		b.WriteString("," + ClientsDN + "\nobjectClass: hook6Client\ncn: client-")
		b.WriteString(itoa(i))
		b.WriteString("\nhook6ClientDUID: " + duid + "\nhook6DelegatedPrefix: " + prefix + "\n\n")
	}
	return b.String()
}
