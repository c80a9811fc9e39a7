//go:build ignore

// fourpoints.go is the script of `make bench`'s "hook6 + 4 scripts" run: a
// few lines of typical work at each of four points every Solicit and
// Request passes, so the figure shows what attaching scripts costs, not
// what a particular script does.
//
// Points: post-packet-decode, pre-client-lookup, post-client-lookup,
// pre-packet-encode.
//
// post-packet-decode tags the message with a class taken from its DUID
// type; pre-client-lookup and post-client-lookup read what the server
// selected; pre-packet-encode gives the Preference option 255 to the class
// it tagged.
package main

import (
	"strings"

	"github.com/hook6/hook6/hooks"
)

const classKey = "bench.class"

func PostPacketDecode(c *hooks.Context) error {
	class := "other"
	if strings.HasPrefix(c.Env.Value(hooks.KeyClientDUID), "0001") {
		class = "llt"
	}
	return c.Env.Set(classKey, class)
}

func PreClientLookup(c *hooks.Context) error {
	if c.Env.Value(hooks.KeyLink) == "" {
		return c.Env.Set("bench.link", "none")
	}
	return nil
}

func PostClientLookup(c *hooks.Context) error {
	if len(c.Request.IAs) == 0 {
		return c.Env.Set("bench.ias", "none")
	}
	return nil
}

func PrePacketEncode(c *hooks.Context) error {
	if c.Env.Value(classKey) == "llt" {
		c.Response.SetPreference(255)
	}
	return nil
}
