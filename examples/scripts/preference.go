//go:build ignore

// preference.go gives one class of clients the Preference option 255 (or
// init-arg value), so they take this server's Advertise at once instead of
// waiting for others (RFC 8415 §18.2.1).
//
// Points: pre-packet-encode.
//
// init-args:
//
//	value         the preference, 0–255 (default 255)
//	vendor-class  only clients whose first vendor-class string is this
//	duid-prefix   only clients whose DUID starts with these hex digits
//	              (colons allowed, e.g. "00:03:00:01")
//
// With neither vendor-class nor duid-prefix, every client gets it.
package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hook6/hook6/hooks"
)

var (
	value       uint8 = 255
	vendorClass string
	duidPrefix  string
)

func Init(args map[string]string) error {
	if s, ok := args["value"]; ok {
		v, err := strconv.ParseUint(s, 10, 8)
		if err != nil {
			return fmt.Errorf("init-arg value %q: want 0-255", s)
		}
		value = uint8(v)
	}
	vendorClass = args["vendor-class"]
	duidPrefix = strings.ToLower(strings.ReplaceAll(args["duid-prefix"], ":", ""))
	return nil
}

func PrePacketEncode(c *hooks.Context) error {
	if vendorClass != "" && c.Env.Value(hooks.KeyVendorClass) != vendorClass {
		return nil
	}
	if duidPrefix != "" && !strings.HasPrefix(c.Env.Value(hooks.KeyClientDUID), duidPrefix) {
		return nil
	}
	c.Response.SetPreference(value)
	return nil
}
