package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hook6/hook6/control"
)

// Adding a command group (script.go, plugin.go, failover.go, ...):
//
//  1. Write NAME.go with a constructor `func newNAMECmd(a *app) *cobra.Command`
//     and no init function. For a group with subcommands start from
//     a.group("NAME", "short help"); leaves take their arguments through
//     exactArgs / rangeArgs / noArgs so that misuse exits 2.
//  2. In RunE: ctx, cancel := a.context(cmd); defer cancel(), then call the
//     daemon with a.client().Do(ctx, method, "/v1/NAME/...", body, &out)
//     (the daemon side adds the route with control.Server.Handle).
//  3. Print with a.json() ? a.printJSON(v) : text, using a.table() for
//     lists. Return usageErrorf for bad arguments (exit 2), any other error
//     for failures (exit 1; main prints it on stderr).
//  4. Add the constructor to commandGroups below, one per line.
//
// Tests: main_test.go has startFake (a control server over a fake backend
// on a temp socket, with room for extra routes) and runCLI (runs the root
// command and returns exit code, stdout and stderr).
var commandGroups = []func(*app) *cobra.Command{
	newStatusCmd,
	newLeaseCmd,
	newReloadCmd,
	newStatsCmd,
	newFailoverCmd,
	newPluginCmd,
	newScriptCmd,
}

// defaultSocket is where hook6d listens unless configured otherwise.
const defaultSocket = "/run/hook6/control.sock"

// app is what every command shares: flags, output streams and the client.
type app struct {
	socket  string
	output  string // text | json
	timeout time.Duration
	stdout  io.Writer
	stderr  io.Writer
}

// client returns a client of the selected control socket.
func (a *app) client() *control.Client { return control.NewClient(a.socket) }

// context bounds one command's requests by --timeout (0: no bound).
func (a *app) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	if a.timeout <= 0 {
		return context.WithCancel(cmd.Context())
	}
	return context.WithTimeout(cmd.Context(), a.timeout)
}

// json reports whether -o json was asked for.
func (a *app) json() bool { return a.output == "json" }

// printJSON writes v as indented JSON on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// usageError is a misuse of the command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exactArgs, rangeArgs and noArgs check positional arguments; a wrong count
// is a usage error.
func exactArgs(n int) cobra.PositionalArgs { return rangeArgs(n, n) }

func noArgs() cobra.PositionalArgs { return rangeArgs(0, 0) }

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		var want string
		switch {
		case hi == 0:
			want = "no arguments"
		case lo == hi && lo == 1:
			want = "1 argument"
		case lo == hi:
			want = fmt.Sprintf("%d arguments", lo)
		default:
			want = fmt.Sprintf("%d to %d arguments", lo, hi)
		}
		name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
		return usageErrorf("%s takes %s, got %d (usage: %s)", name, want, len(args), cmd.UseLine())
	}
}

// group returns a command that only holds subcommands: run without one, or
// with an unknown one, it is a usage error.
func (a *app) group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		// Find sets this for its own suggestions; group runs SuggestionsFor itself.
		SuggestionsMinimumDistance: 2,
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					names = append(names, c.Name())
				}
			}
			if len(args) == 0 {
				return usageErrorf("missing command: one of %s", strings.Join(names, ", "))
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usageErrorf("%s", msg)
		},
	}
}

// newRootCmd builds the whole command tree. getenv supplies HOOK6_SOCKET.
func newRootCmd(a *app, getenv func(string) string) *cobra.Command {
	root := a.group("hook6ctl", "Control a running hook6d DHCPv6 server")
	root.Long = "hook6ctl talks to hook6d over its control socket (HTTP and JSON on a unix socket)."
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	socket := getenv("HOOK6_SOCKET")
	if socket == "" {
		socket = defaultSocket
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.socket, "socket", socket, "control socket of hook6d ($HOOK6_SOCKET sets the default)")
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	pf.DurationVar(&a.timeout, "timeout", 30*time.Second, "give up on the daemon after this long (0: never)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if !slices.Contains([]string{"text", "json"}, a.output) {
			return usageErrorf("--output %q: want text or json", a.output)
		}
		return nil
	}
	for _, newCmd := range commandGroups {
		root.AddCommand(newCmd(a))
	}
	return root
}

// run executes one command line and returns the exit status: 0 ok, 1 the
// command failed, 2 the command line was wrong.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := newRootCmd(a, getenv)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "hook6ctl: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return 2
	}
	fmt.Fprintf(stderr, "hook6ctl: %v\n", err)
	return 1
}
