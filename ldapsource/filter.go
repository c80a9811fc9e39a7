package ldapsource

import (
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Template is a search filter with {name} placeholders. Rendering escapes
// every value per RFC 4515, so a value can only ever be an assertion value:
// it cannot close a parenthesis, add a wildcard or another component.
type Template struct {
	parts  []string // literal, name, literal, name, …, literal
	fields []string // distinct names, in order of first use
}

// ParseTemplate parses a filter template and checks that it compiles as an
// LDAP filter. Names are made of letters, digits, '.', '-' and '_'.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{}
	rest := s
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return nil, fmt.Errorf("filter %q: '}' without '{'", s)
			}
			t.parts = append(t.parts, rest)
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("filter %q: '{' without '}'", s)
		}
		name := rest[i+1 : i+j]
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("filter %q: %w", s, err)
		}
		if strings.IndexByte(rest[:i], '}') >= 0 {
			return nil, fmt.Errorf("filter %q: '}' without '{'", s)
		}
		t.parts = append(t.parts, rest[:i], name)
		if !contains(t.fields, name) {
			t.fields = append(t.fields, name)
		}
		rest = rest[i+j+1:]
	}
	probe := make(map[string]string, len(t.fields))
	for _, f := range t.fields {
		probe[f] = "x"
	}
	f, _ := t.Render(probe)
	if _, err := ldap.CompileFilter(f); err != nil {
		return nil, fmt.Errorf("filter %q: %w", s, err)
	}
	return t, nil
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("empty placeholder {}")
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
		if !ok {
			return fmt.Errorf("placeholder {%s}: invalid character %q", name, c)
		}
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Fields lists the placeholder names, in order of first use.
func (t *Template) Fields() []string { return append([]string(nil), t.fields...) }

// Render fills the placeholders with the escaped field values. It reports
// false when a field is missing or empty: no filter is built then, because
// an empty assertion value would match entries the operator did not mean.
func (t *Template) Render(fields map[string]string) (string, bool) {
	var b strings.Builder
	for i, p := range t.parts {
		if i%2 == 0 {
			b.WriteString(p)
			continue
		}
		v := fields[p]
		if v == "" {
			return "", false
		}
		b.WriteString(ldap.EscapeFilter(v))
	}
	return b.String(), true
}
