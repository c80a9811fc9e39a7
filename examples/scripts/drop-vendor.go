//go:build ignore

// drop-vendor.go drops every message from clients of the listed vendor
// classes (option 16, first vendor-class string), before anything is
// looked up or allocated for them.
//
// Points: post-packet-decode.
//
// init-args:
//
//	vendor-class  comma-separated vendor-class strings to drop (required)
//	match         "exact" (default) or "prefix"
package main

import (
	"errors"
	"strings"

	"github.com/hook6/hook6/hooks"
)

var (
	classes []string
	prefix  bool
)

func Init(args map[string]string) error {
	for _, c := range strings.Split(args["vendor-class"], ",") {
		if c = strings.TrimSpace(c); c != "" {
			classes = append(classes, c)
		}
	}
	if len(classes) == 0 {
		return errors.New("init-arg vendor-class is required")
	}
	switch args["match"] {
	case "", "exact":
	case "prefix":
		prefix = true
	default:
		return errors.New("init-arg match: want exact or prefix")
	}
	return nil
}

func PostPacketDecode(c *hooks.Context) error {
	vc := c.Env.Value(hooks.KeyVendorClass)
	if vc == "" {
		return nil
	}
	for _, cl := range classes {
		if vc == cl || (prefix && strings.HasPrefix(vc, cl)) {
			c.Log.Info("dropping client by vendor class", "vendor-class", vc, "duid", c.Env.Value(hooks.KeyClientDUID))
			return c.Drop()
		}
	}
	return nil
}
