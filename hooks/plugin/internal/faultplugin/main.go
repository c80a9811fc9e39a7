// Command faultplugin is a plugin for the tests of package plugin: it
// behaves well or crashes, hangs, panics, errors or answers against the
// contract, as the env key "fault" of each call says.
package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/plugin"
)

func main() {
	if os.Getenv("FAULTPLUGIN_NOISE") != "" {
		fmt.Println("stray output before the handshake")
	}
	plugin.Serve(plugin.Handlers{
		Init:                 initArgs,
		GenerateLease:        generateLease,
		CheckLeaseAcceptable: checkLeaseAcceptable,
		LeaseStateChange:     leaseStateChange,
		PrePacketEncode:      prePacketEncode,
	})
}

func initArgs(args map[string]string) error {
	if args["refuse"] != "" {
		return errors.New("refusing: " + args["refuse"])
	}
	return nil
}

// fault acts out the fault the env asks for; done is false when the call
// should carry on normally.
func fault(c *hooks.Context) (done bool, err error) {
	switch c.Env.Value("fault") {
	case "hang":
		time.Sleep(time.Hour) // ignores c.Ctx on purpose
	case "crash":
		os.Exit(3)
	case "panic":
		panic("boom")
	case "error":
		return true, errors.New("refused by the plugin")
	}
	return false, nil
}

func generateLease(c *hooks.Context) error {
	if done, err := fault(c); done {
		return err
	}
	a := c.Allocation
	if c.Env.Value("fault") == "outside" {
		a.Candidate = netip.MustParsePrefix("2001:db8:ffff::/56") // bypasses SetLease's check
		return nil
	}
	if err := c.SetLease(netip.PrefixFrom(a.From.Addr(), a.Length)); err != nil {
		return err
	}
	if err := c.Env.Set("faultplugin.request", fmt.Sprintf("%s %x %d", c.Request.MessageType, c.Request.ClientDUID, a.IA.IAID)); err != nil {
		return err
	}
	if c.Env.Value("fault") == "drop" {
		return c.Env.Set(hooks.KeyDrop, "true") // refused at generate-lease
	}
	return nil
}

func checkLeaseAcceptable(c *hooks.Context) error {
	if done, err := fault(c); done {
		return err
	}
	if c.Env.Value("fault") == "garbage" {
		c.Allocation.Candidate = netip.MustParsePrefix("2001:db8::1/128") // not allowed here
	}
	c.Allocation.Acceptable = c.Allocation.Candidate.Addr().As16()[7]%2 == 0 // refuse odd /64s
	return nil
}

func leaseStateChange(c *hooks.Context) error {
	ev := c.Event
	c.Log.Info("lease changed", "prefix", ev.Prefix.String(), "from", ev.From, "to", ev.To, "valid", ev.Valid.String())
	return c.Env.Set("faultplugin.event", fmt.Sprintf("%s %s %d %s>%s %s", ev.Prefix, ev.Type, ev.IAID, ev.From, ev.To, ev.Preferred))
}

func prePacketEncode(c *hooks.Context) error {
	if done, err := fault(c); done {
		return err
	}
	r := c.Response
	r.SetPreference(255)
	r.RemoveOption(23)
	r.AddOption(24, []byte(fmt.Sprintf("options=%d", len(r.Options))))
	if err := c.Env.Delete("gone"); err != nil {
		return err
	}
	if len(c.Request.Relays) > 0 {
		rl := c.Request.Relays[len(c.Request.Relays)-1]
		return c.Env.Set("faultplugin.relay", fmt.Sprintf("%s %s %x", rl.LinkAddress, rl.PeerAddress, rl.InterfaceID))
	}
	return nil
}
