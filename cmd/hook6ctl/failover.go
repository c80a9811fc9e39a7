package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hook6/hook6/failover"
)

// newFailoverCmd is `hook6ctl failover status|setpartnerdown|sync`.
func newFailoverCmd(a *app) *cobra.Command {
	g := a.group("failover", "Show and operate the failover relationship (RFC 8156)")
	g.AddCommand(newFailoverStatusCmd(a), newFailoverPartnerDownCmd(a), newFailoverSyncCmd(a))
	return g
}

func newFailoverStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show this server's failover state, its partner's, and the replication backlog",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			var st failover.Status
			if err := a.client().Do(ctx, http.MethodGet, "/v1/failover/status", nil, &st); err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(st)
			}
			return a.printFailoverStatus(st)
		},
	}
}

func (a *app) printFailoverStatus(st failover.Status) error {
	tw := a.table()
	row(tw, "relationship:", st.Name)
	row(tw, "role:", st.Role)
	row(tw, "state:", fmt.Sprintf("%s since %s (%s)", st.State, fmtTime(st.Since), fmtDuration(st.TimeInState)))
	row(tw, "previous state:", orDash(st.Previous))
	partner := "-"
	if st.PartnerState != "" {
		partner = st.PartnerState
		if st.PartnerSince != nil {
			partner += " since " + fmtTime(*st.PartnerSince)
		}
	}
	row(tw, "partner state:", partner)
	row(tw, "communications:", st.Communications)
	row(tw, "responsiveness:", st.Responsiveness)
	if st.PartnerDownTime != nil {
		row(tw, "partner down since:", fmtTime(*st.PartnerDownTime))
	}
	row(tw, "peer:", st.Peer)
	row(tw, "local:", st.Local)
	transport := "tcp (insecure)"
	if st.TLS {
		transport = "tls"
	}
	row(tw, "transport:", transport)
	row(tw, "mclt:", st.MCLT)
	last := "-"
	if st.LastContact != nil {
		last = fmtTime(*st.LastContact)
	}
	row(tw, "last contact:", last)
	row(tw, "pending updates:", st.Pending)
	row(tw, "unacked updates:", st.Unacked)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.History) == 0 {
		return nil
	}
	fmt.Fprintln(a.stdout, "\nrecent transitions:")
	tw = a.table()
	for _, tr := range st.History {
		row(tw, "  "+fmtTime(tr.At), tr.From, "->", tr.To)
	}
	return tw.Flush()
}

func newFailoverPartnerDownCmd(a *app) *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use:   "setpartnerdown [--at TIME]",
		Short: "Tell this server its partner is down: it enters PARTNER-DOWN and serves every client",
		Long: "setpartnerdown moves this server to PARTNER-DOWN (RFC 8156 §8.4). Do it only when the partner\n" +
			"is really down: two servers in PARTNER-DOWN can lease the same prefix twice. --at gives the time\n" +
			"the partner went down (RFC 3339, \"2006-01-02 15:04:05\" local time, or a duration ago such as 30m);\n" +
			"leases it may have extended become reusable an MCLT after that time. The server refuses while it\n" +
			"can reach its partner.",
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{}
			if at != "" {
				t, err := parseWhen(at, time.Now())
				if err != nil {
					return usageErrorf("--at %q: %v", at, err)
				}
				body["at"] = t
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			var st failover.Status
			if err := a.client().Do(ctx, http.MethodPost, "/v1/failover/partnerdown", body, &st); err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(st)
			}
			since := "-"
			if st.PartnerDownTime != nil {
				since = fmtTime(*st.PartnerDownTime)
			}
			_, err := fmt.Fprintf(a.stdout, "%s: state %s, partner down since %s\n", st.Name, st.State, since)
			return err
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "when the partner went down (default: now)")
	return cmd
}

// parseWhen reads an RFC 3339 time, a local "2006-01-02 15:04:05" time,
// or a duration meaning that long before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("want RFC 3339 (2026-03-01T12:00:00Z), \"2006-01-02 15:04:05\" or a duration ago (30m)")
}

// syncResult is the daemon's answer to a sync.
type syncResult struct {
	Exact    bool     `json:"exact"`
	Sections []string `json:"sections"`
	Bytes    int      `json:"bytes"`
}

func newFailoverSyncCmd(a *app) *cobra.Command {
	var exact bool
	cmd := &cobra.Command{
		Use:   "sync [--exact]",
		Short: "Push this primary's policies, links, prefixes, reservations and extensions to the secondary",
		Long: "sync runs on the primary. The secondary merges the sections into its own config file (keeping its\n" +
			"server, control, log, metrics, plugins and failover sections), checks it and reloads; the previous\n" +
			"file is kept as FILE.bak. Without --exact, items are merged by name (a policy, link, prefix or\n" +
			"extension the secondary has and the primary lacks stays); with --exact the sections become exactly\n" +
			"the primary's. Extension scripts and plugins must be installed on the secondary too.",
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			var res syncResult
			if err := a.client().Do(ctx, http.MethodPost, "/v1/failover/sync", map[string]bool{"exact": exact}, &res); err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(res)
			}
			mode := "merged by name"
			if res.Exact {
				mode = "exact"
			}
			_, err := fmt.Fprintf(a.stdout, "pushed %s (%d bytes, %s); the secondary applied them and reloaded\n",
				strings.Join(res.Sections, ", "), res.Bytes, mode)
			return err
		},
	}
	cmd.Flags().BoolVar(&exact, "exact", false, "make the secondary's sections exactly the primary's")
	return cmd
}
