package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Binaries are the paths of the hook6 programs under test.
type Binaries struct {
	Hook6d   string
	Hook6ctl string
}

// RepoRoot returns the directory of hook6's go.mod, searched from the
// working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build compiles cmd/hook6d and cmd/hook6ctl into dir, so every test runs
// the real binaries as an operator would.
func Build(ctx context.Context, dir string) (Binaries, error) {
	root, err := RepoRoot()
	if err != nil {
		return Binaries{}, err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/hook6d", "./cmd/hook6ctl")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("build hook6d and hook6ctl: %w\n%s", err, out)
	}
	return Binaries{Hook6d: filepath.Join(dir, "hook6d"), Hook6ctl: filepath.Join(dir, "hook6ctl")}, nil
}
