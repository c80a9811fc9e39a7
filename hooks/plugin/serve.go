package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hook6/hook6/hooks"
	pb "github.com/hook6/hook6/hooks/plugin/proto"
)

// Func is a point function, the same signature a script uses.
type Func func(c *hooks.Context) error

// Handlers are a plugin's functions. A nil field is a point the plugin does
// not implement, and hook6 never calls it there. Functions may be called
// from several goroutines at once (one per packet in flight).
type Handlers struct {
	// Init receives the extension's init-args from the config, once each
	// time the plugin starts, before any point function. An error stops
	// the plugin from loading.
	Init func(args map[string]string) error

	PostPacketDecode     Func
	PreClientLookup      Func
	PostClientLookup     Func
	GenerateLease        Func
	CheckLeaseAcceptable Func
	LeaseStateChange     Func
	PrePacketEncode      Func
	PostPacketEncode     Func
}

// byPoint returns the functions indexed by hooks.Point.
func (h *Handlers) byPoint() []Func {
	return []Func{
		hooks.PostPacketDecode: h.PostPacketDecode, hooks.PreClientLookup: h.PreClientLookup,
		hooks.PostClientLookup: h.PostClientLookup, hooks.GenerateLease: h.GenerateLease,
		hooks.CheckLeaseAcceptable: h.CheckLeaseAcceptable, hooks.LeaseStateChange: h.LeaseStateChange,
		hooks.PrePacketEncode: h.PrePacketEncode, hooks.PostPacketEncode: h.PostPacketEncode,
	}
}

// Serve serves h to hook6 and returns when hook6 stops the plugin. Call it
// from main and print nothing to stdout before it: stdout carries the
// handshake. Run by hand (not by hook6), the binary says it is a plugin and
// exits.
func Serve(h Handlers) {
	srv, err := newServer(h)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go exitWhenOrphaned(os.Getppid())
	outliveTerm()
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: pluginSets(srv),
		GRPCServer:       newGRPCServer,
	})
}

// exitWhenOrphaned ends the plugin once hook6 is gone without stopping it
// (killed), so no orphan keeps running: the process then has another
// parent.
func exitWhenOrphaned(parent int) {
	for range time.Tick(time.Second) {
		if os.Getppid() != parent {
			os.Exit(2)
		}
	}
}

// outliveTerm keeps SIGTERM from ending the plugin (go-plugin already
// does so for SIGINT). Its life is hook6's to end: hook6 stops it after
// the packets it is finishing, and it exits by itself once hook6 is gone.
// A SIGTERM to hook6's whole process group (systemctl stop, a container
// runtime) would otherwise kill it under those packets, and hook6 would
// take that for a crash. The signal is caught, not ignored, so processes
// the plugin starts get the default disposition.
func outliveTerm() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		for range term {
		}
	}()
}

// newGRPCServer serves calls on a few long-lived worker goroutines, whose
// stacks have grown once, rather than on a new goroutine per call.
func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts, grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))))...)
}

// server is the plugin side of the protocol.
type server struct {
	pb.UnimplementedExtensionServer
	init   func(map[string]string) error
	funcs  []Func
	points []string
}

func newServer(h Handlers) (*server, error) {
	s := &server{init: h.Init, funcs: h.byPoint()}
	for p, f := range s.funcs {
		if f != nil {
			s.points = append(s.points, hooks.Point(p).String())
		}
	}
	if len(s.points) == 0 {
		return nil, fmt.Errorf("plugin: Serve needs at least one point function in Handlers")
	}
	return s, nil
}

func (s *server) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	return &pb.DescribeResponse{Points: slices.Clone(s.points), ProtocolVersion: ProtocolVersion}, nil
}

func (s *server) Init(_ context.Context, r *pb.InitRequest) (*pb.InitResponse, error) {
	if s.init == nil {
		return &pb.InitResponse{}, nil
	}
	if err := protect(func() error { return s.init(r.Args) }); err != nil {
		return &pb.InitResponse{Error: strings.ToValidUTF8(err.Error(), "\uFFFD")}, nil
	}
	return &pb.InitResponse{}, nil
}

// envPool recycles environments between calls: a reset Env keeps its
// maps' room, so a call does not grow them again. A point function must
// not keep c.Env (or c) after it returns, as in every runtime.
var envPool = sync.Pool{New: func() any { return hooks.NewEnv() }}

func (s *server) Handle(ctx context.Context, r *pb.HandleRequest) (*pb.HandleResponse, error) {
	env := envPool.Get().(*hooks.Env)
	defer func() {
		env.Reset()
		envPool.Put(env)
	}()
	var logs recorder
	c, err := decodeRequest(ctx, r, slog.New(&logHandler{min: slog.Level(r.LogLevel), out: &logs}), env)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decoding the context: %v", err)
	}
	f := s.funcs[c.Point]
	if f == nil {
		return nil, status.Errorf(codes.Unimplemented, "this plugin does not handle %s", c.Point)
	}
	callErr := protect(func() error { return f(c) })
	return encodeResponse(c, r.Env, callErr, logs.records), nil
}

// protect turns a panic in plugin code into an error, so one bad packet
// does not take the plugin down.
func protect(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return f()
}
