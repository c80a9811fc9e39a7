package plugin

import "unsafe"

// The environment travels as bytes (a value copied from a packet need not
// be UTF-8, which protobuf strings must be). These two conversions spare a
// copy of every key and value on each side of every call.

// bytesOf returns the bytes of s without copying them. The result is only
// handed to protobuf marshalling, which reads it.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// stringOf returns b as a string without copying it. It is only used for
// bytes fields of messages decoded from the wire: protobuf copied them out
// of the receive buffer, and nothing writes to them afterwards.
func stringOf(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
