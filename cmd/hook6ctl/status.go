package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// newStatusCmd is `hook6ctl status`: a summary of the running server.
func newStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the server's version, uptime, DUID, configuration and counts",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			st, err := a.client().Status(ctx)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(st)
			}
			failover := st.Failover
			if failover == "" {
				failover = "none"
			}
			tw := a.table()
			row(tw, "version:", orDash(st.Version))
			row(tw, "uptime:", fmtDuration(st.UptimeSeconds))
			row(tw, "server DUID:", orDash(st.ServerDUID))
			row(tw, "config file:", orDash(st.ConfigFile))
			row(tw, "interfaces:", orDash(strings.Join(st.Interfaces, ", ")))
			row(tw, "links:", st.Links)
			row(tw, "leases:", st.Leases)
			row(tw, "failover:", failover)
			return tw.Flush()
		},
	}
}
