package labbench

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/script"
)

// The benchmark's script compiles in hook6's script dialect and handles
// exactly the four points the "hook6 + 4 scripts" run attaches it to.
func TestFourPointsScriptCompiles(t *testing.T) {
	path := filepath.Join("..", "scripts", "fourpoints.go")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	points, err := script.Check(path, src, script.Allow{})
	if err != nil {
		t.Fatal(err)
	}
	want := []hooks.Point{hooks.PostPacketDecode, hooks.PreClientLookup, hooks.PostClientLookup, hooks.PrePacketEncode}
	if !slices.Equal(points, want) {
		t.Errorf("points %v, want %v", points, want)
	}
}
