// Package ldapsource looks DHCPv6 clients up in an LDAP directory: a pool of
// connections (ldap://, ldaps:// or StartTLS, bound with a password read
// from a file) that reconnect on their own, a search filter built from a
// template whose placeholders are filled with client fields escaped per
// RFC 4515, and a map from LDAP attributes to environment-dictionary keys.
//
// A Source answers Lookup(ctx, fields) with the env keys and values of the
// client's entry; the extensions in extensions/ldap (synchronous) and
// extensions/asynccache (cached, never blocking a packet) call it.
package ldapsource

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Config is the configuration of a Source, as written in the YAML config.
type Config struct {
	// URLs are tried in order on each (re)connection, starting with the
	// last one that worked: ldap://host[:port] or ldaps://host[:port].
	URLs []string `yaml:"urls"`
	// StartTLS upgrades ldap:// connections with the StartTLS operation.
	StartTLS bool `yaml:"start-tls"`
	// BindDN is the account hook6 binds as; empty means anonymous.
	BindDN string `yaml:"bind-dn"`
	// PasswordFile holds the bind password (a trailing newline is ignored).
	// It is read again on every reconnection, so it can be rotated.
	PasswordFile string `yaml:"password-file"`
	// BaseDN is where searches start.
	BaseDN string `yaml:"base-dn"`
	// Scope is base, one or sub (default sub).
	Scope string `yaml:"scope"`
	// Filter is the search filter with placeholders, e.g.
	// "(&(objectClass=hook6Client)(hook6ClientDUID={duid}))". Each
	// {name} is replaced by the client field of that name, escaped.
	Filter string `yaml:"filter"`
	// Attributes maps an LDAP attribute of the entry to the env key its
	// first value is stored under. The pseudo-attribute "dn" gives the
	// entry's DN.
	Attributes map[string]string `yaml:"attributes"`
	// DialTimeout bounds connecting, TLS and bind (default 2s).
	DialTimeout time.Duration `yaml:"dial-timeout"`
	// Timeout bounds one search (default 2s).
	Timeout time.Duration `yaml:"timeout"`
	// PoolSize is the number of connections, hence of concurrent searches
	// (default 4).
	PoolSize int `yaml:"pool-size"`
	// MaxBackoff caps the wait between failed reconnections, during which
	// lookups fail at once instead of dialling (default 5s).
	MaxBackoff time.Duration `yaml:"max-backoff"`
	// TLS configures ldaps:// and StartTLS.
	TLS TLSConfig `yaml:"tls"`
}

// TLSConfig configures certificate checks for ldaps:// and StartTLS.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs to trust instead of the system's.
	CAFile string `yaml:"ca-file"`
	// ServerName overrides the name checked in the server certificate
	// (default: the URL's host).
	ServerName string `yaml:"server-name"`
	// InsecureSkipVerify accepts any certificate. For lab use only.
	InsecureSkipVerify bool `yaml:"insecure-skip-verify"`
}

// Defaults applied by New to zero fields.
const (
	DefaultDialTimeout = 2 * time.Second
	DefaultTimeout     = 2 * time.Second
	DefaultPoolSize    = 4
	DefaultMaxBackoff  = 5 * time.Second
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.PoolSize <= 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Scope == "" {
		c.Scope = "sub"
	}
	return c
}

// parseScope turns base, one or sub into the LDAP scope.
func parseScope(s string) (int, error) {
	switch strings.ToLower(s) {
	case "base":
		return ldap.ScopeBaseObject, nil
	case "one", "onelevel", "single":
		return ldap.ScopeSingleLevel, nil
	case "sub", "subtree":
		return ldap.ScopeWholeSubtree, nil
	}
	return 0, fmt.Errorf("scope %q: want base, one or sub", s)
}

// validate checks the fields that do not need the network.
func (c Config) validate() error {
	if len(c.URLs) == 0 {
		return fmt.Errorf("urls: at least one ldap:// or ldaps:// URL is required")
	}
	for _, raw := range c.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("urls: %w", err)
		}
		switch u.Scheme {
		case "ldap":
		case "ldaps":
			if c.StartTLS {
				return fmt.Errorf("urls: %s is ldaps:// and start-tls is set: choose one", raw)
			}
		default:
			return fmt.Errorf("urls: %s: scheme must be ldap or ldaps", raw)
		}
		if u.Host == "" {
			return fmt.Errorf("urls: %s has no host", raw)
		}
	}
	if c.BaseDN == "" {
		return fmt.Errorf("base-dn is required")
	}
	if _, err := ldap.ParseDN(c.BaseDN); err != nil {
		return fmt.Errorf("base-dn %q: %w", c.BaseDN, err)
	}
	if c.BindDN != "" {
		if _, err := ldap.ParseDN(c.BindDN); err != nil {
			return fmt.Errorf("bind-dn %q: %w", c.BindDN, err)
		}
		if c.PasswordFile == "" {
			return fmt.Errorf("bind-dn is set: password-file is required")
		}
	}
	if _, err := parseScope(c.Scope); err != nil {
		return err
	}
	for attr, key := range c.Attributes {
		if attr == "" || key == "" {
			return fmt.Errorf("attributes: %q → %q: attribute and env key must not be empty", attr, key)
		}
	}
	return nil
}

// readPassword reads the bind password file.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading bind password: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// tlsConfig builds the client TLS configuration for host.
func (t TLSConfig) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // operator's explicit choice, documented as lab only
		MinVersion:         tls.VersionTLS12,
	}
	if t.ServerName != "" {
		tc.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading tls ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca-file %s: no PEM certificate found", t.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
