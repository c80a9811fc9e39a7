package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// examples/lab/lab.sh, the lab a newcomer runs by hand, comes up, serves
// its client an address and a prefix, and goes away without a trace.
func TestExampleLabScript(t *testing.T) {
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "examples", "lab", "lab.sh")
	name := fmt.Sprintf("h6x%d", os.Getpid()%100000)
	env := append(os.Environ(), "LAB="+name, "VAR="+t.TempDir(), "HOOK6_BIN="+filepath.Dir(bins.Hook6d))
	ctx := timeout(t, 60*time.Second)
	run := func(arg string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, script, arg)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("lab.sh %s: %v\n%s", arg, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		cmd := exec.Command(script, "down")
		cmd.Env = env
		_ = cmd.Run()
	})

	if out := run("up"); !strings.Contains(out, "lab up") {
		t.Fatalf("lab.sh up: %s", out)
	}
	client := exec.Command(script, "client")
	client.Env = env
	client.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-client.Process.Pid, syscall.SIGKILL)
		_ = client.Wait()
	}()
	for {
		out := run("leases")
		if strings.Count(out, " leased ") == 2 && strings.Contains(out, " na ") && strings.Contains(out, " pd ") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the lab's client holds no address and prefix: %s", out)
		case <-time.After(200 * time.Millisecond):
		}
	}
	_ = syscall.Kill(-client.Process.Pid, syscall.SIGKILL)

	run("down")
	out, err := exec.CommandContext(context.Background(), "ip", "netns", "list").CombinedOutput()
	if err != nil || strings.Contains(string(out), name+"-") {
		t.Errorf("namespaces left after lab.sh down: %s %v", out, err)
	}
}
