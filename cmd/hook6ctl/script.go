package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/spf13/cobra"

	"github.com/hook6/hook6/core/view"
	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/script"
)

// newScriptCmd is `hook6ctl script check|run`: develop a script offline,
// without a daemon.
func newScriptCmd(a *app) *cobra.Command {
	cmd := a.group("script", "Compile and try extension scripts offline")
	cmd.AddCommand(newScriptCheckCmd(a), newScriptRunCmd(a))
	return cmd
}

// allowFlags are the allow settings of an extension, as flags.
type allowFlags struct {
	files      []string
	network    bool
	goroutines bool
}

func (f *allowFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.files, "allow-files", nil, "give the script file access under this path (repeatable), as allow.files")
	fl.BoolVar(&f.network, "allow-network", false, "give the script the network packages, as allow.network")
	fl.BoolVar(&f.goroutines, "allow-goroutines", false, "allow go statements, as allow.goroutines")
}

func (f *allowFlags) allow() script.Allow {
	return script.Allow{Files: f.files, Network: f.network, Goroutines: f.goroutines}
}

func newScriptCheckCmd(a *app) *cobra.Command {
	var allow allowFlags
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Compile a script and list the points it handles (errors as file:line)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			points, err := script.Check(args[0], nil, allow.allow())
			if err != nil {
				return err
			}
			names := pointNames(points)
			if a.json() {
				return a.printJSON(map[string]any{"file": args[0], "points": names})
			}
			fmt.Fprintf(a.stdout, "%s: ok\npoints: %s\n", args[0], strings.Join(names, ", "))
			return nil
		},
	}
	allow.add(cmd)
	return cmd
}

func pointNames(ps []hooks.Point) []string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return s
}

// runFlags are the settings of `script run`.
type runFlags struct {
	allow    allowFlags
	packet   string
	init     []string
	iface    string
	source   string
	link     string
	from     string
	length   int
	pdFrom   string
	pdLength int
	budget   time.Duration
	failDrop bool
	server   string
}

func newScriptRunCmd(a *app) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run FILE --packet HEX",
		Short: "Run a script's points against one DHCPv6 message and print the env and decisions",
		Long: `run decodes the message (a client message or Relay-forw, in hex), builds the
request view and environment the server would, and runs each point the script
defines in pipeline order: generate-lease and check-lease-acceptable once per
IA with an allocation from --from/--length (IA_NA) or --pd-from/--pd-length
(IA_PD), lease-state-change for each lease, pre-packet-encode with the answer
being built, post-packet-encode with its bytes. It stops where the packet
would be dropped. What the script prints and logs goes to stderr.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScript(cmd.Context(), a, args[0], &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.packet, "packet", "", "the DHCPv6 message in hex, as received on port 547 (required)")
	fl.StringArrayVar(&f.init, "init", nil, "an init-arg KEY=VALUE (repeatable)")
	fl.StringVar(&f.iface, "interface", "eth0", "arrival interface")
	fl.StringVar(&f.source, "source", "[fe80::1]:546", "source address and port of the message")
	fl.StringVar(&f.link, "link", "", "name of the selected link (server.link)")
	fl.StringVar(&f.from, "from", "2001:db8:1::/64", "prefix IA_NA addresses are allocated from")
	fl.IntVar(&f.length, "length", 128, "length of an IA_NA lease")
	fl.StringVar(&f.pdFrom, "pd-from", "2001:db8:8000::/40", "prefix IA_PD prefixes are delegated from")
	fl.IntVar(&f.pdLength, "pd-length", 56, "length of a delegated prefix")
	fl.DurationVar(&f.budget, "budget", hooks.DefaultBudget, "time budget of each call")
	fl.BoolVar(&f.failDrop, "failure-mode-drop", false, "drop the packet when a call fails (failure-mode: drop)")
	fl.StringVar(&f.server, "server-name", "", "server.name (default: this host's name)")
	f.allow.add(cmd)
	return cmd
}

// pointResult is what one call did.
type pointResult struct {
	Point  string `json:"point"`
	IA     string `json:"ia,omitempty"`
	Status string `json:"status"` // ok, error, panic, timeout, dropped
	Error  string `json:"error,omitempty"`
	Took   string `json:"took"`
	Detail string `json:"detail,omitempty"`
}

// runReport is the output of `script run`.
type runReport struct {
	Request    requestSummary    `json:"request"`
	Calls      []pointResult     `json:"calls"`
	Dropped    bool              `json:"dropped"`
	DroppedAt  string            `json:"dropped_at,omitempty"`
	Leases     []string          `json:"leases"`
	SkipLease  []string          `json:"skip_lease"`
	Refused    []string          `json:"refused"`
	Preference *uint8            `json:"preference,omitempty"`
	Added      []optionOut       `json:"options_added"`
	Removed    []uint16          `json:"options_removed"`
	Env        map[string]string `json:"env"`
}

type requestSummary struct {
	MessageType string   `json:"message_type"`
	XID         string   `json:"transaction_id"`
	ClientDUID  string   `json:"client_duid"`
	Relays      int      `json:"relays"`
	IAs         []string `json:"ias"`
}

type optionOut struct {
	Code uint16 `json:"code"`
	Data string `json:"data"`
}

// runScript is `script run`.
func runScript(ctx context.Context, a *app, file string, f *runFlags) error {
	if f.packet == "" {
		return usageErrorf("--packet is required")
	}
	req, err := decodePacket(f.packet)
	if err != nil {
		return usageErrorf("--packet: %v", err)
	}
	if req.Source, err = netip.ParseAddrPort(f.source); err != nil {
		return usageErrorf("--source: %v", err)
	}
	req.Interface, req.Link = f.iface, f.link
	naFrom, err := netip.ParsePrefix(f.from)
	if err != nil {
		return usageErrorf("--from: %v", err)
	}
	pdFrom, err := netip.ParsePrefix(f.pdFrom)
	if err != nil {
		return usageErrorf("--pd-from: %v", err)
	}
	initArgs, err := parseInitArgs(f.init)
	if err != nil {
		return err
	}
	rec := &recorder{next: slog.NewTextHandler(a.stderr, nil), mu: &sync.Mutex{}, errs: &[]string{}}
	log := slog.New(rec)
	s, err := script.Load(script.Options{Name: strings.TrimSuffix(filepath.Base(file), ".go"), Path: file,
		Args: initArgs, Allow: f.allow.allow(), Workers: 2, Log: log, Output: a.stderr})
	if err != nil {
		return err
	}
	defer s.Close()
	mode := hooks.FailContinue
	if f.failDrop {
		mode = hooks.FailDrop
	}
	ch, err := hooks.NewChain([]hooks.Member{{Extension: s, Budget: f.budget, FailureMode: mode}}, log)
	if err != nil {
		return err
	}
	env := hooks.NewEnv()
	view.ServerEnvNamed(env, req, f.server)
	p := &offline{ch: ch, rec: rec, req: req, env: env, ctx: ctx, rep: &runReport{Request: summarize(req),
		Calls: []pointResult{}, Leases: []string{}, SkipLease: []string{}, Refused: []string{}, Added: []optionOut{}, Removed: []uint16{}}}
	p.pipeline(alloc{naFrom, f.length}, alloc{pdFrom, f.pdLength})
	p.rep.Env = env.Map()
	if a.json() {
		return a.printJSON(p.rep)
	}
	printReport(a.stdout, p.rep)
	return nil
}

// decodePacket reads a hex message (spaces, colons and a 0x prefix
// allowed) into the request view.
func decodePacket(s string) (*hooks.Request, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "0x")
	s = strings.NewReplacer(" ", "", ":", "", "\n", "", "\t", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, err
	}
	msg, err := dhcpv6.FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("decoding the DHCPv6 message: %w", err)
	}
	return view.FromBytes(b, msg) // as the server builds it
}

func parseInitArgs(kvs []string) (map[string]string, error) {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--init %q: want KEY=VALUE", kv)
		}
		m[k] = v
	}
	return m, nil
}

func summarize(req *hooks.Request) requestSummary {
	s := requestSummary{MessageType: req.MessageType, XID: fmt.Sprintf("0x%06x", req.TransactionID),
		ClientDUID: hex.EncodeToString(req.ClientDUID), Relays: len(req.Relays)}
	for _, ia := range req.IAs {
		s.IAs = append(s.IAs, iaName(ia))
	}
	return s
}

func iaName(ia hooks.IA) string {
	s := fmt.Sprintf("IA_%s %d", strings.ToUpper(string(ia.Type)), ia.IAID)
	for _, h := range ia.Hints {
		s += " hint " + h.String()
	}
	return s
}

// alloc is where leases of one IA type come from.
type alloc struct {
	from   netip.Prefix
	length int
}

// offline runs the points as the server would for one message.
type offline struct {
	ch  *hooks.Chain
	rec *recorder
	req *hooks.Request
	env *hooks.Env
	ctx context.Context
	rep *runReport
}

// pipeline runs every point in order until the packet is dropped.
func (o *offline) pipeline(na, pd alloc) {
	for _, p := range []hooks.Point{hooks.PostPacketDecode, hooks.PreClientLookup, hooks.PostClientLookup} {
		if !o.run(&hooks.Context{Point: p}, "") {
			return
		}
	}
	var events []*hooks.LeaseEvent
	for _, ia := range o.req.IAs {
		a := na
		if ia.Type == hooks.IAPD {
			a = pd
		}
		lease, ok := o.allocate(ia, a)
		if !ok {
			return
		}
		if lease.IsValid() {
			to := "leased"
			if o.req.MessageType == "SOLICIT" {
				to = "offered"
			}
			events = append(events, &hooks.LeaseEvent{Prefix: lease, Type: ia.Type, IAID: ia.IAID, DUID: o.req.ClientDUID,
				To: to, Valid: 14 * 24 * time.Hour, Preferred: 7 * 24 * time.Hour})
		}
	}
	for _, ev := range events {
		o.run(&hooks.Context{Point: hooks.LeaseStateChange, Event: ev}, ev.Prefix.String())
	}
	resp, reply := o.response()
	if !o.run(&hooks.Context{Point: hooks.PrePacketEncode, Response: resp}, "") {
		return
	}
	if resp.PreferenceSet {
		v := resp.Preference
		o.rep.Preference = &v
	}
	for _, opt := range resp.Add {
		o.rep.Added = append(o.rep.Added, optionOut{Code: opt.Code, Data: hex.EncodeToString(opt.Data)})
	}
	o.rep.Removed = append(o.rep.Removed, resp.Remove...)
	applyEdits(reply, resp)
	o.run(&hooks.Context{Point: hooks.PostPacketEncode, Response: resp, Packet: reply.ToBytes()}, "")
}

// allocate runs generate-lease and check-lease-acceptable for one IA and
// returns the lease the server would give (invalid: none from the script),
// or false when the packet is dropped.
func (o *offline) allocate(ia hooks.IA, a alloc) (netip.Prefix, bool) {
	name := iaName(ia)
	al := &hooks.Allocation{IA: ia, PrefixName: "offline", From: a.from, Length: a.length}
	if !o.run(&hooks.Context{Point: hooks.GenerateLease, Allocation: al}, name) {
		return netip.Prefix{}, false
	}
	if o.env.IsTrue(hooks.KeySkipLease) {
		o.rep.SkipLease = append(o.rep.SkipLease, name)
		_ = o.env.Delete(hooks.KeySkipLease)
		return netip.Prefix{}, true
	}
	cand := al.Candidate
	if cand.IsValid() {
		o.rep.Leases = append(o.rep.Leases, name+": "+cand.String())
	} else if o.ch.Has(hooks.CheckLeaseAcceptable) {
		// The server's own algorithms would pick one: take the first.
		cand = netip.PrefixFrom(a.from.Masked().Addr(), a.length)
		if a.length == 128 {
			cand = netip.PrefixFrom(a.from.Masked().Addr().Next(), 128)
		}
	}
	if !cand.IsValid() {
		return cand, true
	}
	ck := &hooks.Allocation{IA: ia, PrefixName: "offline", From: a.from, Length: a.length, Candidate: cand, Acceptable: true}
	if !o.run(&hooks.Context{Point: hooks.CheckLeaseAcceptable, Allocation: ck}, name+" "+cand.String()) {
		return netip.Prefix{}, false
	}
	if !ck.Acceptable {
		o.rep.Refused = append(o.rep.Refused, name+": "+cand.String())
		return netip.Prefix{}, true
	}
	return cand, true
}

// response builds the answer the server would be building: its type and
// the identifiers.
func (o *offline) response() (*hooks.Response, *dhcpv6.Message) {
	reply := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply}
	if o.req.MessageType == "SOLICIT" {
		reply.MessageType = dhcpv6.MessageTypeAdvertise
	}
	x := o.req.TransactionID
	reply.TransactionID = dhcpv6.TransactionID{byte(x >> 16), byte(x >> 8), byte(x)}
	if len(o.req.ClientDUID) > 0 {
		reply.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionClientID, OptionData: o.req.ClientDUID})
	}
	serverDUID := []byte{0, 3, 0, 1, 0x02, 0, 0, 0, 0x53, 0x01}
	reply.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionServerID, OptionData: serverDUID})
	r := &hooks.Response{MessageType: view.MessageTypeName(reply.MessageType)}
	for _, opt := range reply.Options.Options {
		r.Options = append(r.Options, hooks.Option{Code: uint16(opt.Code()), Data: opt.ToBytes()})
	}
	return r, reply
}

// applyEdits applies the response edits as the server does.
func applyEdits(m *dhcpv6.Message, r *hooks.Response) {
	for _, code := range r.Remove {
		m.Options.Del(dhcpv6.OptionCode(code))
	}
	if r.PreferenceSet {
		m.Options.Del(dhcpv6.OptionPreference)
		m.Options.Add(dhcpv6.OptPreference(r.Preference))
	}
	for _, opt := range r.Add {
		m.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionCode(opt.Code), OptionData: opt.Data})
	}
}

// run runs one point if the script handles it and records the call; it
// reports whether the packet goes on.
func (o *offline) run(c *hooks.Context, detail string) bool {
	if !o.ch.Has(c.Point) {
		return true
	}
	c.Request, c.Env, c.Ctx = o.req, o.env, o.ctx
	before := o.ch.Stats()
	o.rec.take()
	start := time.Now()
	err := o.ch.Run(c)
	res := pointResult{Point: c.Point.String(), Took: time.Since(start).Round(time.Microsecond).String(), Status: "ok", Detail: detail}
	if c.Allocation != nil {
		res.IA = iaName(c.Allocation.IA)
	}
	for name, st := range o.ch.Stats() {
		b := before[name]
		switch {
		case st.Panics > b.Panics:
			res.Status = "panic"
		case st.Timeouts > b.Timeouts:
			res.Status = "timeout"
		case st.Errors > b.Errors:
			res.Status = "error"
		}
	}
	if msgs := o.rec.take(); len(msgs) > 0 {
		res.Error = strings.Join(msgs, "; ")
	}
	dropped := err != nil || o.env.IsTrue(hooks.KeyDrop)
	if dropped {
		o.rep.Dropped, o.rep.DroppedAt = true, c.Point.String()
		if res.Status == "ok" {
			res.Status = "dropped"
		}
	}
	o.rep.Calls = append(o.rep.Calls, res)
	return !dropped
}

// recorder is a slog handler keeping the error of each failed call for the
// report while writing every record to the next handler.
type recorder struct {
	next slog.Handler
	mu   *sync.Mutex
	errs *[]string
}

func (r *recorder) Enabled(ctx context.Context, l slog.Level) bool { return r.next.Enabled(ctx, l) }

func (r *recorder) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == "extension failed" {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" {
				r.mu.Lock()
				*r.errs = append(*r.errs, a.Value.String())
				r.mu.Unlock()
			}
			return true
		})
	}
	return r.next.Handle(ctx, rec)
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{next: r.next.WithAttrs(as), mu: r.mu, errs: r.errs}
}

func (r *recorder) WithGroup(name string) slog.Handler {
	return &recorder{next: r.next.WithGroup(name), mu: r.mu, errs: r.errs}
}

// take returns and forgets the recorded errors.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := *r.errs
	*r.errs = nil
	return e
}

func printReport(w io.Writer, r *runReport) {
	q := r.Request
	fmt.Fprintf(w, "request: %s xid %s client-duid %s relays %d\n", q.MessageType, q.XID, q.ClientDUID, q.Relays)
	for _, ia := range q.IAs {
		fmt.Fprintf(w, "  %s\n", ia)
	}
	fmt.Fprintln(w, "calls:")
	if len(r.Calls) == 0 {
		fmt.Fprintln(w, "  (the script handles no point this message reaches)")
	}
	for _, c := range r.Calls {
		line := fmt.Sprintf("  %-22s %-8s %s", c.Point, c.Status, c.Took)
		if c.Detail != "" {
			line += "  " + c.Detail
		}
		if c.Error != "" {
			line += "  error: " + c.Error
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w, "decisions:")
	if r.Dropped {
		fmt.Fprintf(w, "  drop: yes, at %s\n", r.DroppedAt)
	} else {
		fmt.Fprintln(w, "  drop: no")
	}
	list := func(name string, items []string) {
		if len(items) > 0 {
			fmt.Fprintf(w, "  %s: %s\n", name, strings.Join(items, ", "))
		}
	}
	list("lease", r.Leases)
	list("skip-lease", r.SkipLease)
	list("refused", r.Refused)
	if r.Preference != nil {
		fmt.Fprintf(w, "  preference: %d\n", *r.Preference)
	}
	for _, o := range r.Added {
		fmt.Fprintf(w, "  option added: %d %s\n", o.Code, o.Data)
	}
	for _, c := range r.Removed {
		fmt.Fprintf(w, "  option removed: %d\n", c)
	}
	fmt.Fprintln(w, "env:")
	tw := newTable(w)
	for _, k := range sortedKeys(r.Env) {
		row(tw, "  "+k, r.Env[k])
	}
	tw.Flush()
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
