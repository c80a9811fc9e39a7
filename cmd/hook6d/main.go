// Command hook6d is the hook6 DHCPv6 server.
//
//	hook6d -c FILE      serve with FILE
//	hook6d              serve with the embedded default config (state under ./var)
//	hook6d -t -c FILE   check FILE and exit (0 ok, 1 with file:line: field: message errors)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/hook6/hook6/core/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("hook6d", flag.ContinueOnError)
	cfgPath := fs.String("c", "", "config file (default: the embedded default config)")
	check := fs.Bool("t", false, "check the config and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Println("hook6d", version)
		return 0
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if *check {
		if err := checkExtensions(cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("%s: ok (%d links, %d prefixes, %d extensions)\n", cfg.File, len(cfg.Links), len(cfg.Prefixes), len(cfg.Extensions))
		return 0
	}
	log := newLogger(cfg)
	if path := os.Getenv("HOOK6_CPUPROFILE"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			log.Error("starting CPU profile", "err", err)
			return 1
		}
		defer stopProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := start(ctx, *cfgPath, cfg, log)
	if err != nil {
		log.Error("starting", "err", err)
		return 1
	}
	if err := d.serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("serving", "err", err)
		return 1
	}
	return 0
}

// checkExtensions compiles the config's scripts and resolves its plugins
// and built-ins, then closes them: -t catches a script that does not
// compile, not only a config that does not parse.
func checkExtensions(cfg *config.Config) error {
	set := newExtensionSet(slog.New(slog.DiscardHandler))
	r, err := set.build(cfg)
	if err != nil {
		return fmt.Errorf("%s: extensions: %w", cfg.File, err)
	}
	if c, ok := r.(interface{ Close() error }); ok {
		c.Close()
	}
	return nil
}

// startCPUProfile writes a CPU profile of the whole run to path (set
// HOOK6_CPUPROFILE when measuring; `go tool pprof` reads it).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// loadConfig reads path, or the embedded default when path is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default()
	}
	return config.Load(path)
}

func newLogger(cfg *config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
