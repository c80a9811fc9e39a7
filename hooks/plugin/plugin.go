// Package plugin runs hook6 extensions as separate processes over
// hashicorp/go-plugin and gRPC (the protocol is proto/extension.proto).
//
// A plugin author writes the same point functions as a script and serves
// them from main:
//
//	func main() {
//		plugin.Serve(plugin.Handlers{Init: Init, GenerateLease: GenerateLease})
//	}
//
// hook6 starts the binary with Open: the go-plugin handshake (magic cookie
// and plugin protocol version), mutual TLS generated per start (AutoMTLS),
// and the binary's sha256 from its manifest checked before it runs, so a
// swapped or tampered binary is refused. The plugin declares its points at
// start and only those are called. A plugin that crashes is restarted in the
// background with backoff; one that hangs or answers garbage fails the call
// within the call's deadline and is restarted when it keeps doing so.
package plugin

import (
	"context"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/hook6/hook6/hooks/plugin/pkg"
	pb "github.com/hook6/hook6/hooks/plugin/proto"
)

// ProtocolVersion is the plugin protocol version (see pkg.ProtocolVersion).
const ProtocolVersion = pkg.ProtocolVersion

// handshake is what hook6 and a plugin must agree on before anything
// else. The cookie only tells a plugin it was started by hook6; it is not
// a secret.
var handshake = goplugin.HandshakeConfig{
	MagicCookieKey:   "HOOK6_PLUGIN",
	MagicCookieValue: "5e0c1d0a-dhcpv6-extension",
}

// dispenseName is the one plugin each binary serves.
const dispenseName = "extension"

// pluginSets offers the extension at every protocol version this side
// speaks (one today).
func pluginSets(srv pb.ExtensionServer) map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		ProtocolVersion: {dispenseName: &grpcPlugin{srv: srv}},
	}
}

// grpcPlugin binds the generated service to go-plugin.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	srv pb.ExtensionServer // plugin side only
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterExtensionServer(s, p.srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewExtensionClient(c), nil
}
