// perf.go is the small script of the load benchmark: at each point it
// handles, one or two env reads or writes and a decision, as a typical
// operator's script does.
//
// Points: any of post-packet-decode, post-client-lookup,
// lease-state-change, pre-packet-encode.
package main

import (
	"errors"

	"github.com/hook6/hook6/hooks"
)

func PostPacketDecode(c *hooks.Context) error {
	if c.Env.Value(hooks.KeyVendorClass) == "perf-drop" {
		return c.Drop()
	}
	return c.Env.Set("perf.seen", "true")
}

func PostClientLookup(c *hooks.Context) error {
	if c.Env.Value(hooks.KeyLink) == "" {
		return errors.New("no link selected")
	}
	return c.Env.Set("perf.link-seen", "true")
}

func LeaseStateChange(c *hooks.Context) error {
	if c.Event == nil {
		return errors.New("no lease event")
	}
	return nil
}

func PrePacketEncode(c *hooks.Context) error {
	if c.Env.Value(hooks.KeyMessageType) == "SOLICIT" {
		c.Response.SetPreference(255)
	}
	return nil
}
