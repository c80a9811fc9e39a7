package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hook6/hook6/hooks/plugin/pkg"
)

// buildExample builds the example plugin for this machine.
func buildExample(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "remoteid-prefix")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/hook6/hook6/examples/plugins/remoteid-prefix").CombinedOutput()
	if err != nil {
		t.Fatalf("building the example plugin: %v\n%s", err, out)
	}
	return bin
}

func TestPluginPackVerifyInstallList(t *testing.T) {
	bin := buildExample(t)
	out, dir := t.TempDir(), t.TempDir()
	archive := filepath.Join(out, "remoteid-prefix-1.2.0-"+runtime.GOOS+"-"+runtime.GOARCH+".tar.gz")

	// Without --points, pack asks the binary.
	code, stdout, stderr := runCLI(t, "", "plugin", "pack", bin, "--name", "remoteid-prefix", "--version", "1.2.0", "--out", out)
	if code != 0 || !strings.Contains(stdout, "points generate-lease") {
		t.Fatalf("pack: %d %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "", "plugin", "verify", archive)
	if code != 0 || !strings.Contains(stdout, "ok: remoteid-prefix@1.2.0") {
		t.Fatalf("verify: %d %q %q", code, stdout, stderr)
	}
	for i := 0; i < 2; i++ { // a second install of the same archive is a no-op
		code, stdout, stderr = runCLI(t, "", "plugin", "install", archive, "--dir", dir)
		if code != 0 || !strings.Contains(stdout, "installed remoteid-prefix@1.2.0") {
			t.Fatalf("install %d: %d %q %q", i, code, stdout, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "remoteid-prefix", "1.2.0", "remoteid-prefix")); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, "", "plugin", "list", "--dir", dir)
	if code != 0 || !strings.Contains(stdout, "remoteid-prefix") || !strings.Contains(stdout, "1.2.0") || !strings.Contains(stdout, "generate-lease") {
		t.Fatalf("list: %d %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, "", "plugin", "list", "--dir", dir, "-o", "json")
	var ins []pkg.Installed
	if code != 0 || json.Unmarshal([]byte(stdout), &ins) != nil || len(ins) != 1 || ins[0].Version != "1.2.0" || ins[0].Binary == "" {
		t.Fatalf("list -o json: %d %q", code, stdout)
	}

	// A tampered archive is refused by verify and install.
	data, _ := os.ReadFile(archive)
	bad := filepath.Join(out, "bad.tar.gz")
	os.WriteFile(bad, data[:len(data)/2], 0o644)
	for _, cmd := range [][]string{{"plugin", "verify", bad}, {"plugin", "install", bad, "--dir", dir}} {
		if code, _, stderr := runCLI(t, "", cmd...); code != 1 || stderr == "" {
			t.Errorf("%v: exit %d %q", cmd, code, stderr)
		}
	}
}

func TestPluginUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"plugin", "pack", "bin"},
		{"plugin", "pack", "bin", "--name", "x", "--version", "1.0.0", "--points", "nowhere"},
		{"plugin", "verify"},
		{"plugin", "install"},
		{"plugin", "list", "extra"},
		{"plugin", "frobnicate"},
	} {
		if code, _, stderr := runCLI(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
	code, _, stderr := runCLI(t, "", "plugin", "pack", filepath.Join(t.TempDir(), "missing"), "--name", "x", "--version", "1.0.0", "--points", "generate-lease")
	if code != 1 || !strings.Contains(stderr, "missing") {
		t.Errorf("pack of a missing binary: %d %q", code, stderr)
	}
}

func TestPluginListEmptyDir(t *testing.T) {
	code, stdout, _ := runCLI(t, "", "plugin", "list", "--dir", filepath.Join(t.TempDir(), "none"), "-o", "json")
	if code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Fatalf("list of a missing dir: %d %q", code, stdout)
	}
}
