// Command faultplugin is a plugin for the tests of package plugin: it
// behaves well or crashes, hangs, panics, errors or answers against the
// contract, as the env key "fault" of each call says.
//
// With FAULTPLUGIN_BARE_GRPC=SOCKET it is instead a bare gRPC server of the
// same service on a unix socket, without go-plugin or TLS, answering every
// Handle with an empty answer: the benchmarks' baseline. With
// FAULTPLUGIN_BARE_TLS=1 too, that server speaks TLS with a throwaway
// self-signed certificate, to tell the cost of TLS from go-plugin's.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/plugin"
	pb "github.com/hook6/hook6/hooks/plugin/proto"
)

func main() {
	if sock := os.Getenv("FAULTPLUGIN_BARE_GRPC"); sock != "" {
		if err := serveBare(sock); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
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

// bare answers Handle with nothing, over plain gRPC.
type bare struct {
	pb.UnimplementedExtensionServer
}

func (bare) Handle(context.Context, *pb.HandleRequest) (*pb.HandleResponse, error) {
	return &pb.HandleResponse{}, nil
}

func serveBare(sock string) error {
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	var opts []grpc.ServerOption
	if os.Getenv("FAULTPLUGIN_BARE_TLS") != "" {
		cert, err := selfSigned()
		if err != nil {
			return err
		}
		opts = append(opts, grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	}
	s := grpc.NewServer(opts...)
	pb.RegisterExtensionServer(s, bare{})
	return s.Serve(l)
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
