package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// newStatsCmd is `hook6ctl stats [SECTION]`: the server's counters, all of
// them or one top-level section (packets, leases, extensions, failover...).
func newStatsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "stats [SECTION]",
		Short: "Show the server's counters, or one section of them",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			st, err := a.client().Stats(ctx)
			if err != nil {
				return err
			}
			var v any = st
			if len(args) == 1 {
				sec, ok := st[args[0]]
				if !ok {
					return fmt.Errorf("no stats section %q; sections: %s", args[0],
						strings.Join(slices.Sorted(maps.Keys(st)), ", "))
				}
				v = sec
				if _, isMap := sec.(map[string]any); !isMap {
					v = map[string]any{args[0]: sec}
				}
			}
			if a.json() {
				return a.printJSON(v)
			}
			tw := a.table()
			flatten(v, "", func(k string, val any) { row(tw, k, val) })
			return tw.Flush()
		},
	}
}

// flatten calls fn for every leaf of nested maps, in key order, with the
// keys joined by dots. Lists and other values are leaves.
func flatten(v any, prefix string, fn func(key string, val any)) {
	m, ok := v.(map[string]any)
	if !ok {
		fn(prefix, leafString(v))
		return
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		flatten(m[k], key, fn)
	}
}

func leafString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return "-"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
