#!/bin/sh
# Regenerates extension.pb.go and extension_grpc.pb.go from extension.proto.
# Needs protoc (apt-get install -y protobuf-compiler); the Go generators are
# built at pinned versions: protoc-gen-go from the protobuf module in go.mod,
# protoc-gen-go-grpc v1.5.1.
set -eu
cd "$(dirname "$0")"
command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler" >&2; exit 1; }
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
go build -o "$tools/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
GOBIN="$tools" go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
PATH="$tools:$PATH" protoc -I . \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	extension.proto
