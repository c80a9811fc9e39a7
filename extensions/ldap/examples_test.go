package ldap_test

import (
	"path/filepath"
	"testing"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/extensions"
	"github.com/hook6/hook6/ldapsource/ldaptest"
)

// TestExampleConfigs loads examples/ldap/*.yaml and builds their
// extensions as hook6d does (from the repository root, scripts relative
// to the config file): every init-arg is known and valid.
func TestExampleConfigs(t *testing.T) {
	dir := ldaptest.ExampleDir()
	t.Chdir(filepath.Join(dir, "..", ".."))
	for _, name := range []string{"hook6.yaml", "hook6-sync.yaml", "hook6-script.yaml"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Load(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			ch, err := extensions.Build(cfg.Extensions, extensions.BuildOptions{BaseDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if got := ch.Names(); len(got) != 2 || got[0] != "directory" {
				t.Fatalf("extensions %v", got)
			}
			ch.Close()
		})
	}
}
