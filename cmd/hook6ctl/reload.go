package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hook6/hook6/control"
)

// newReloadCmd is `hook6ctl reload`: the daemon re-reads its configuration,
// or refuses it and keeps the one it runs.
func newReloadCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the server re-read its configuration; print the errors if it refuses",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			err := a.client().Reload(ctx)
			if control.StatusOf(err) == http.StatusUnprocessableEntity {
				return refused(err)
			}
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(control.Reloaded{Reloaded: true})
			}
			_, err = fmt.Fprintln(a.stdout, "configuration reloaded")
			return err
		},
	}
}

// refused formats the config errors of a refused reload, one per line.
func refused(err error) error {
	var b strings.Builder
	b.WriteString("configuration refused; the server keeps running the previous one:")
	for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
		b.WriteString("\n  " + line)
	}
	return errors.New(b.String())
}
