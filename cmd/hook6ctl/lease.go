package main

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"strconv"

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
			return a.listLeases(ctx, f)
		},
	}
	c.Flags().StringVar(&prefix, "prefix", "", "only leases inside this prefix (an address matches itself)")
	c.Flags().StringVar(&duid, "duid", "", "only leases of this client DUID (hex, colons optional)")
	return c
}

// listLeases prints the leases matching f as they arrive, as JSON or as a
// table, holding one buffer of output rather than the list. If the list
// breaks off, what came before it is printed and the error returned.
func (a *app) listLeases(ctx context.Context, f control.LeaseFilter) error {
	if a.json() {
		lw := control.NewLeaseWriter(a.stdout)
		if err := a.client().EachLease(ctx, f, lw.Write); err != nil {
			_ = lw.Flush()
			return err
		}
		return lw.Close()
	}
	bw := bufio.NewWriterSize(a.stdout, 64<<10)
	tw := newStreamTable(bw)
	err := a.client().EachLease(ctx, f, func(l *control.Lease) error {
		if tw.Rows() == 0 {
			tw.Row("PREFIX", "KIND", "STATE", "DUID", "IAID", "LINK", "PREFIX-NAME", "PREFERRED", "VALID", "EXPIRES")
		}
		return tw.Row(l.Prefix, l.Kind, l.State, orDash(l.DUID), strconv.FormatUint(uint64(l.IAID), 10), orDash(l.Link),
			orDash(l.PrefixName), fmtSeconds(l.Preferred), fmtSeconds(l.Valid), fmtTime(l.Expires))
	})
	if err == nil && tw.Rows() == 0 {
		_, err = fmt.Fprintln(bw, "no leases")
	}
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
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
