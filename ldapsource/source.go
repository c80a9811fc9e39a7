package ldapsource

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/go-ldap/ldap/v3"
)

// ErrAmbiguous is returned when the filter matches more than one entry:
// the directory, or the filter, does not identify one client.
var ErrAmbiguous = errors.New("ldap filter matches more than one entry")

// Source looks clients up in the directory. It is safe for concurrent use;
// at most PoolSize searches run at once, the others wait for a connection.
type Source struct {
	cfg      Config
	scope    int
	filter   *Template
	attrs    []string // LDAP attributes requested
	pool     *pool
	searches atomic.Uint64
	found    atomic.Uint64
	notFound atomic.Uint64
	errs     atomic.Uint64
}

// Stats counts what a Source did since it was made.
type Stats struct {
	Searches   uint64 // searches sent
	Found      uint64 // searches that found one entry
	NotFound   uint64 // searches that found none (or had a field missing)
	Errors     uint64 // lookups that failed
	Dials      uint64 // connection attempts
	DialErrors uint64 // failed connection attempts
}

// New checks cfg, reads the password file once to report a bad path now,
// and returns a Source. Connections are made on first use.
func New(cfg Config) (*Source, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("ldap source: %w", err)
	}
	scope, _ := parseScope(cfg.Scope)
	tmpl, err := ParseTemplate(cfg.Filter)
	if err != nil {
		return nil, fmt.Errorf("ldap source: %w", err)
	}
	if cfg.BindDN != "" {
		if _, err := readPassword(cfg.PasswordFile); err != nil {
			return nil, fmt.Errorf("ldap source: %w", err)
		}
	}
	if cfg.TLS.CAFile != "" {
		if _, err := cfg.TLS.tlsConfig(""); err != nil {
			return nil, fmt.Errorf("ldap source: %w", err)
		}
	}
	s := &Source{cfg: cfg, scope: scope, filter: tmpl, pool: newPool(cfg)}
	for a := range cfg.Attributes {
		if a != "dn" {
			s.attrs = append(s.attrs, a)
		}
	}
	sort.Strings(s.attrs)
	if len(s.attrs) == 0 {
		s.attrs = []string{"1.1"} // RFC 4511: no attributes
	}
	return s, nil
}

// Fields lists the client fields the filter uses, e.g. [duid].
func (s *Source) Fields() []string { return s.filter.Fields() }

// Filter returns the filter Lookup would send for fields, and false when a
// field it needs is missing.
func (s *Source) Filter(fields map[string]string) (string, bool) { return s.filter.Render(fields) }

// Lookup searches the client's entry. It returns the env keys and values
// mapped from the entry's attributes and found=true, or found=false when no
// entry matches or a field the filter needs is missing or empty. A
// connection the server closed is replaced and the search retried once.
func (s *Source) Lookup(ctx context.Context, fields map[string]string) (map[string]string, bool, error) {
	filter, ok := s.filter.Render(fields)
	if !ok {
		s.notFound.Add(1)
		return nil, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		c, reused, err := s.pool.get(ctx)
		if err != nil {
			s.errs.Add(1)
			return nil, false, fmt.Errorf("ldap lookup %s: %w", filter, err)
		}
		s.searches.Add(1)
		entries, err := s.search(ctx, c, filter)
		bad := err != nil && (ldap.IsErrorWithCode(err, ldap.ErrorNetwork) || ctx.Err() != nil)
		s.pool.put(c, bad)
		if bad && reused && attempt == 0 && ctx.Err() == nil {
			continue
		}
		if err != nil {
			s.errs.Add(1)
			return nil, false, fmt.Errorf("ldap lookup %s: %w", filter, err)
		}
		switch len(entries) {
		case 0:
			s.notFound.Add(1)
			return nil, false, nil
		case 1:
			s.found.Add(1)
			return s.mapEntry(entries[0]), true, nil
		default:
			s.errs.Add(1)
			return nil, false, fmt.Errorf("ldap lookup %s: %w (%s, %s)", filter, ErrAmbiguous, entries[0].DN, entries[1].DN)
		}
	}
}

// search runs one search on c; ctx cancels it.
func (s *Source) search(ctx context.Context, c *ldap.Conn, filter string) ([]*ldap.Entry, error) {
	secs := int(s.cfg.Timeout.Seconds() + 0.999)
	req := ldap.NewSearchRequest(s.cfg.BaseDN, s.scope, ldap.NeverDerefAliases, 2, secs, false, filter, s.attrs, nil)
	res := c.SearchAsync(ctx, req, 2)
	var entries []*ldap.Entry
	for res.Next() {
		if e := res.Entry(); e != nil {
			entries = append(entries, e)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("searching: %w", err)
	}
	err := res.Err()
	switch {
	case err == nil:
		return entries, nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) && len(entries) > 1:
		return entries, nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil, nil
	}
	return nil, err
}

// mapEntry copies the mapped attributes of e into env keys.
func (s *Source) mapEntry(e *ldap.Entry) map[string]string {
	out := make(map[string]string, len(s.cfg.Attributes))
	for attr, key := range s.cfg.Attributes {
		if attr == "dn" {
			out[key] = e.DN
			continue
		}
		if v := e.GetEqualFoldAttributeValues(attr); len(v) > 0 {
			out[key] = v[0]
		}
	}
	return out
}

// Stats returns the counters.
func (s *Source) Stats() Stats {
	return Stats{
		Searches:   s.searches.Load(),
		Found:      s.found.Load(),
		NotFound:   s.notFound.Load(),
		Errors:     s.errs.Load(),
		Dials:      s.pool.dials.Load(),
		DialErrors: s.pool.dialErrors.Load(),
	}
}

// Close closes the connections. Lookups after Close fail with ErrClosed.
func (s *Source) Close() error {
	s.pool.close()
	return nil
}
