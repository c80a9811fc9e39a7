// Package pluginpb is the generated gRPC code of the plugin protocol
// (extension.proto). Run `go generate ./hooks/plugin/proto` (or
// `make generate`) after editing the .proto.
package pluginpb

//go:generate sh generate.sh
