//go:build ignore

// env-handoff.go shows the environment dictionary carrying a decision
// from one point to a later one: at post-packet-decode it classifies the
// client by its user class into a tier, stored in the env key
// example.tier; at pre-packet-encode gold clients get their own DNS
// recursive name server (option 23) in the answer.
//
// Points: post-packet-decode, pre-packet-encode.
//
// init-args:
//
//	gold-class  the user class of gold clients (default "gold")
//	gold-dns    the DNS server given to them (default 2001:db8::53:1)
package main

import (
	"net/netip"

	"github.com/hook6/hook6/hooks"
)

const (
	tierKey    = "example.tier"
	optionDNS  = 23
	defaultDNS = "2001:db8::53:1"
)

var (
	goldClass = "gold"
	goldDNS   = netip.MustParseAddr(defaultDNS)
)

func Init(args map[string]string) error {
	if v := args["gold-class"]; v != "" {
		goldClass = v
	}
	if v := args["gold-dns"]; v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return err
		}
		goldDNS = a
	}
	return nil
}

func PostPacketDecode(c *hooks.Context) error {
	tier := "standard"
	if c.Env.Value(hooks.KeyUserClass) == goldClass {
		tier = "gold"
	}
	return c.Env.Set(tierKey, tier)
}

func PrePacketEncode(c *hooks.Context) error {
	if c.Env.Value(tierKey) != "gold" {
		return nil
	}
	b := goldDNS.As16()
	c.Response.ReplaceOption(optionDNS, b[:])
	return nil
}
