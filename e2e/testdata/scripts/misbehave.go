// misbehave.go fails on purpose for the clients of one vendor class, so
// the end-to-end tests can show that a failing script costs only those
// clients' packets.
//
// Points: post-packet-decode.
//
// init-args:
//
//	mode          loop (never returns), panic or error
//	vendor-class  the vendor class (option 16, first string) it fails for
package main

import (
	"errors"

	"github.com/hook6/hook6/hooks"
)

var mode, class string

func Init(args map[string]string) error {
	mode, class = args["mode"], args["vendor-class"]
	switch mode {
	case "loop", "panic", "error":
	default:
		return errors.New("init-arg mode: want loop, panic or error")
	}
	if class == "" {
		return errors.New("init-arg vendor-class is required")
	}
	return nil
}

func PostPacketDecode(c *hooks.Context) error {
	if c.Env.Value(hooks.KeyVendorClass) != class {
		return nil
	}
	switch mode {
	case "loop":
		for n := 0; n >= 0; n = (n + 1) % 1000 {
		}
	case "panic":
		panic("misbehave: panic for vendor class " + class)
	}
	return errors.New("misbehave: error for vendor class " + class)
}
