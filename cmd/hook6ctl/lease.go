package main

import (
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/hook6/hook6/control"
)

// newLeaseCmd is `hook6ctl lease list|show|delete`.
func newLeaseCmd(a *app) *cobra.Command {
	c := a.group("lease", "List, show and delete leases")
	c.AddCommand(newLeaseListCmd(a), newLeaseShowCmd(a), newLeaseDeleteCmd(a))
	return c
}

func newLeaseListCmd(a *app) *cobra.Command {
	var prefix, duid string
	c := &cobra.Command{
		Use:   "list [--prefix ADDR|PREFIX] [--duid DUID]",
		Short: "List leases, optionally those inside a prefix or of one client",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var f control.LeaseFilter
			if prefix != "" {
				p, err := parsePrefixArg(prefix)
				if err != nil {
					return err
				}
				f.Prefix = p
			}
			if duid != "" {
				d, err := control.ParseDUID(duid)
				if err != nil {
					return usageError{err}
				}
				f.DUID = d
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			ls, err := a.client().Leases(ctx, f)
			if err != nil {
				return err
			}
			if a.json() {
				if ls == nil {
					ls = []control.Lease{}
				}
				return a.printJSON(ls)
			}
			return a.printLeases(ls)
		},
	}
	c.Flags().StringVar(&prefix, "prefix", "", "only leases inside this prefix (an address matches itself)")
	c.Flags().StringVar(&duid, "duid", "", "only leases of this client DUID (hex, colons optional)")
	return c
}

func (a *app) printLeases(ls []control.Lease) error {
	if len(ls) == 0 {
		_, err := fmt.Fprintln(a.stdout, "no leases")
		return err
	}
	tw := a.table()
	row(tw, "PREFIX", "KIND", "STATE", "DUID", "IAID", "LINK", "PREFIX-NAME", "PREFERRED", "VALID", "EXPIRES")
	for _, l := range ls {
		row(tw, l.Prefix, l.Kind, l.State, orDash(l.DUID), l.IAID, orDash(l.Link), orDash(l.PrefixName),
			fmtSeconds(l.Preferred), fmtSeconds(l.Valid), fmtTime(l.Expires))
	}
	return tw.Flush()
}

func newLeaseShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show ADDR|PREFIX",
		Short: "Show the lease of an address or delegated prefix",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parsePrefixArg(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			l, err := a.client().Lease(ctx, p)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(l)
			}
			tw := a.table()
			row(tw, "prefix:", l.Prefix)
			row(tw, "kind:", l.Kind)
			row(tw, "state:", l.State)
			row(tw, "duid:", orDash(l.DUID))
			row(tw, "iaid:", l.IAID)
			row(tw, "link:", orDash(l.Link))
			row(tw, "prefix-name:", orDash(l.PrefixName))
			row(tw, "preferred:", fmtSeconds(l.Preferred))
			row(tw, "valid:", fmtSeconds(l.Valid))
			row(tw, "start:", fmtTime(l.Start))
			row(tw, "expires:", fmtTime(l.Expires))
			return tw.Flush()
		},
	}
}

func newLeaseDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete PREFIX",
		Short: "Delete every lease inside PREFIX (::/0 for all) and print how many",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parsePrefixArg(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			n, err := a.client().DeleteLeases(ctx, p)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(control.Deleted{Deleted: n})
			}
			noun := "leases"
			if n == 1 {
				noun = "lease"
			}
			_, err = fmt.Fprintf(a.stdout, "deleted %d %s within %s\n", n, noun, p)
			return err
		},
	}
}

// parsePrefixArg reads an address or prefix from the command line.
func parsePrefixArg(s string) (netip.Prefix, error) {
	p, err := control.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, usageError{err}
	}
	return p, nil
}
