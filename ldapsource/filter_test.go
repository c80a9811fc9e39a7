package ldapsource

import (
	"reflect"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

func TestParseTemplate(t *testing.T) {
	tmpl, err := ParseTemplate("(&(objectClass=hook6Client)(|(hook6ClientDUID={duid})(hook6RemoteID={remote-id}))(hook6ClientDUID={duid}))")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tmpl.Fields(), []string{"duid", "remote-id"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	for _, bad := range []string{
		"(hook6ClientDUID={duid)",
		"(hook6ClientDUID=duid})",
		"(hook6ClientDUID={})",
		"(hook6ClientDUID={du id})",
		"(hook6ClientDUID={duid}",
		"hook6ClientDUID={duid})(",
		"(&(a={x})(b=})",
	} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q) accepted", bad)
		}
	}
}

func TestRenderMissingField(t *testing.T) {
	tmpl, err := ParseTemplate("(&(hook6ClientDUID={duid})(hook6RemoteID={remote-id}))")
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := tmpl.Render(map[string]string{"duid": "0001"}); ok {
		t.Fatalf("rendered %q with remote-id missing", f)
	}
	if f, ok := tmpl.Render(map[string]string{"duid": "0001", "remote-id": ""}); ok {
		t.Fatalf("rendered %q with remote-id empty", f)
	}
	f, ok := tmpl.Render(map[string]string{"duid": "0001", "remote-id": "0a0b"})
	if !ok || f != "(&(hook6ClientDUID=0001)(hook6RemoteID=0a0b))" {
		t.Fatalf("got %q %v", f, ok)
	}
}

// TestRenderInjection: whatever an attacker puts in a DUID or remote-id,
// the compiled filter keeps the template's structure and the value comes
// back byte for byte as one equality assertion.
func TestRenderInjection(t *testing.T) {
	tmpl, err := ParseTemplate("(&(objectClass=hook6Client)(hook6ClientDUID={duid})(hook6RemoteID={remote-id}))")
	if err != nil {
		t.Fatal(err)
	}
	attacks := []string{
		"*)(uid=*",
		"*",
		"0001)(|(objectClass=*)",
		"\\2a",
		"x)(&",
		"a\x00b",
		"é(ü)*\\",
		"))))))",
	}
	for _, a := range attacks {
		f, ok := tmpl.Render(map[string]string{"duid": a, "remote-id": a})
		if !ok {
			t.Fatalf("Render(%q) refused", a)
		}
		p, err := ldap.CompileFilter(f)
		if err != nil {
			t.Fatalf("Render(%q) = %q does not compile: %v", a, f, err)
		}
		if p.Tag != ldap.FilterAnd || len(p.Children) != 3 {
			t.Fatalf("Render(%q) = %q: structure changed (tag %d, %d children)", a, f, p.Tag, len(p.Children))
		}
		for i, want := range []string{"hook6Client", a, a} {
			c := p.Children[i]
			if c.Tag != ldap.FilterEqualityMatch {
				t.Fatalf("Render(%q) = %q: component %d is not an equality match", a, f, i)
			}
			if got := assertionValue(c); got != want {
				t.Fatalf("Render(%q) = %q: component %d asserts %q", a, f, i, got)
			}
		}
	}
}

func assertionValue(p *ber.Packet) string {
	return p.Children[1].Data.String()
}
