package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/plugin"
	"github.com/hook6/hook6/hooks/plugin/pkg"
)

// hook6Version is checked against a plugin's min-hook6-version at install
// ("" skips the check); release builds set it with
// -ldflags "-X main.hook6Version=X.Y.Z".
var hook6Version = ""

// defaultPluginDir is where plugins are installed unless --dir, -c or
// $HOOK6_PLUGIN_DIR say otherwise (the default of plugins.dir for
// state-dir /var/lib/hook6).
const defaultPluginDir = "/var/lib/hook6/plugins"

// newPluginCmd is `hook6ctl plugin pack|verify|install|list`: packaging
// works on files and the plugin directory, without the daemon.
func newPluginCmd(a *app) *cobra.Command {
	g := a.group("plugin", "Pack, verify, install and list plugin binaries")
	g.AddCommand(newPluginPackCmd(a), newPluginVerifyCmd(a), newPluginInstallCmd(a), newPluginListCmd(a))
	return g
}

func newPluginPackCmd(a *app) *cobra.Command {
	var o pkg.PackOptions
	var points []string
	cmd := &cobra.Command{
		Use:   "pack BINARY --name NAME --version VERSION",
		Short: "Write NAME-VERSION-OS-ARCH.tar.gz holding the binary and its manifest",
		Long: "pack writes the binary and a manifest (name, version, plugin protocol version, points, sha256,\n" +
			"os/arch, minimum hook6 version) into NAME-VERSION-OS-ARCH.tar.gz. Without --points it starts\n" +
			"the binary and asks which points it implements.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Name == "" || o.Version == "" {
				return usageErrorf("plugin pack needs --name and --version")
			}
			for _, p := range points {
				pt, err := hooks.ParsePoint(strings.TrimSpace(p))
				if err != nil {
					return usageErrorf("--points: %v", err)
				}
				o.Points = append(o.Points, pt.String())
			}
			if len(o.Points) == 0 {
				ctx, cancel := a.context(cmd)
				defer cancel()
				declared, err := plugin.Inspect(ctx, args[0])
				if err != nil {
					return fmt.Errorf("asking %s for its points (give --points for a binary that does not run here): %w", args[0], err)
				}
				for _, p := range declared {
					o.Points = append(o.Points, p.String())
				}
			}
			path, m, err := pkg.Pack(args[0], o)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(struct {
					Archive  string       `json:"archive"`
					Manifest pkg.Manifest `json:"manifest"`
				}{path, m})
			}
			_, err = fmt.Fprintf(a.stdout, "%s: %s for %s/%s, points %s, sha256 %s\n", path, m.Ref(), m.OS, m.Arch, strings.Join(m.Points, ","), m.SHA256)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "plugin name (the config's plugin: NAME)")
	f.StringVar(&o.Version, "version", "", "plugin version, MAJOR.MINOR.PATCH")
	f.StringSliceVar(&points, "points", nil, "points the plugin implements (default: ask the binary)")
	f.StringVar(&o.MinHook6Version, "min-hook6", "", "oldest hook6 version the plugin runs with")
	f.StringVar(&o.OS, "os", "", "GOOS (default: from the binary)")
	f.StringVar(&o.Arch, "arch", "", "GOARCH (default: from the binary)")
	f.StringVar(&o.OutDir, "out", "", "directory to write the archive in (default: the current one)")
	return cmd
}

func newPluginVerifyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a plugin archive: manifest, plugin protocol, checksum and platform of the binary",
		Args:  exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			m, err := pkg.Verify(args[0])
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(m)
			}
			_, err = fmt.Fprintf(a.stdout, "%s: ok: %s for %s/%s, plugin protocol %d, points %s\n",
				args[0], m.Ref(), m.OS, m.Arch, m.ProtocolVersion, strings.Join(m.Points, ","))
			return err
		},
	}
}

// pluginDir binds --dir and -c and returns a function resolving the plugin
// directory: --dir, else plugins.dir of the -c config, else
// $HOOK6_PLUGIN_DIR, else defaultPluginDir.
func pluginDir(cmd *cobra.Command) func() (string, error) {
	var dir, cfgFile string
	cmd.Flags().StringVar(&dir, "dir", "", "plugin directory (default: plugins.dir of -c, $HOOK6_PLUGIN_DIR or "+defaultPluginDir+")")
	cmd.Flags().StringVarP(&cfgFile, "config", "c", "", "take the plugin directory from this hook6d config")
	return func() (string, error) {
		switch {
		case dir != "":
			return dir, nil
		case cfgFile != "":
			cfg, err := config.Load(cfgFile)
			if err != nil {
				return "", err
			}
			return cfg.Plugins.Dir, nil
		case os.Getenv("HOOK6_PLUGIN_DIR") != "":
			return os.Getenv("HOOK6_PLUGIN_DIR"), nil
		}
		return defaultPluginDir, nil
	}
}

func newPluginInstallCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "install FILE",
		Short: "Verify a plugin archive and install it into the plugin directory as NAME/VERSION",
		Long: "install refuses an archive built for another os/arch or plugin protocol, or whose binary does\n" +
			"not match its checksum. Installing a new version leaves the old ones: a config naming the plugin\n" +
			"without a version runs the highest one after the next reload; NAME@VERSION pins one.",
		Args: exactArgs(1),
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an installed NAME@VERSION whose binary differs")
	dirOf := pluginDir(cmd)
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		dir, err := dirOf()
		if err != nil {
			return err
		}
		in, err := pkg.Install(args[0], dir, pkg.InstallOptions{Hook6Version: hook6Version, Force: force})
		if err != nil {
			return err
		}
		if a.json() {
			return a.printJSON(in)
		}
		_, err = fmt.Fprintf(a.stdout, "installed %s in %s\n", in.Ref(), in.Dir)
		return err
	}
	return cmd
}

func newPluginListCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the plugins installed in the plugin directory",
		Args:  noArgs(),
	}
	dirOf := pluginDir(cmd)
	cmd.RunE = func(*cobra.Command, []string) error {
		dir, err := dirOf()
		if err != nil {
			return err
		}
		ins, err := pkg.List(dir)
		if err != nil {
			return err
		}
		if a.json() {
			if ins == nil {
				ins = []pkg.Installed{}
			}
			return a.printJSON(ins)
		}
		w := a.table()
		row(w, "NAME", "VERSION", "PROTOCOL", "OS/ARCH", "POINTS", "SHA256")
		for _, in := range ins {
			row(w, in.Name, in.Version, in.ProtocolVersion, in.OS+"/"+in.Arch, strings.Join(in.Points, ","), in.SHA256[:12])
		}
		return w.Flush()
	}
	return cmd
}
