package lease

import (
	"net/netip"
	"testing"
)

func TestSubPrefix(t *testing.T) {
	cases := []struct {
		p    string
		bits int
		i    uint64
		want string
	}{
		{"2001:db8:8000::/40", 56, 0, "2001:db8:8000::/56"},
		{"2001:db8:8000::/40", 56, 1, "2001:db8:8000:100::/56"},
		{"2001:db8:8000::/40", 56, 0xffff, "2001:db8:80ff:ff00::/56"},
		{"2001:db8:1::/65", 128, 5, "2001:db8:1::5/128"},
		{"2001:db8:1::/64", 128, 1 << 62, "2001:db8:1:0:4000::/128"},
		{"2001:db8::/32", 64, 1<<32 - 1, "2001:db8:ffff:ffff::/64"},
		{"2001:db8::/48", 96, 1 << 20, "2001:db8:0:0:10::/96"},
	}
	for _, c := range cases {
		if got := SubPrefix(netip.MustParsePrefix(c.p), c.bits, c.i); got.String() != c.want {
			t.Errorf("SubPrefix(%s, %d, %d) = %v, want %s", c.p, c.bits, c.i, got, c.want)
		}
	}
}
