package pkg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
)

// InstallOptions tune Install.
type InstallOptions struct {
	// Hook6Version is the running hook6's version, checked against the
	// manifest's min-hook6-version ("" skips the check).
	Hook6Version string
	// OS and Arch of the machine; default runtime.GOOS and runtime.GOARCH.
	OS, Arch string
	// Force replaces an installed NAME@VERSION whose binary differs.
	Force bool
}

// Installed is one plugin in the plugin directory.
type Installed struct {
	Manifest
	Dir    string `json:"dir"`    // DIR/NAME/VERSION
	Binary string `json:"binary"` // DIR/NAME/VERSION/NAME
}

// Install verifies archive, refuses it unless it runs here (plugin
// protocol, os/arch, hook6 version), and unpacks it into dir/NAME/VERSION.
// Installing the same NAME@VERSION again is a no-op when the binary is the
// same, and an error otherwise unless Force is set.
func Install(archive, dir string, o InstallOptions) (Installed, error) {
	m, bin, err := readArchive(archive)
	if err != nil {
		return Installed{}, err
	}
	if err := m.CheckCompatible(or(o.OS, runtime.GOOS), or(o.Arch, runtime.GOARCH), o.Hook6Version); err != nil {
		return Installed{}, fmt.Errorf("installing %s: %w", archive, err)
	}
	in := installed(dir, m)
	if old, err := ReadManifest(filepath.Join(in.Dir, ManifestFile)); err == nil {
		if old.SHA256 == m.SHA256 && CheckBinary(in.Binary, m.SHA256) == nil {
			return in, nil
		}
		if !o.Force {
			return Installed{}, fmt.Errorf("installing %s: %s is already installed in %s with another binary (use --force to replace it)", archive, m.Ref(), in.Dir)
		}
	}
	if err := writeInstall(in, bin); err != nil {
		return Installed{}, fmt.Errorf("installing %s into %s: %w", archive, dir, err)
	}
	return in, nil
}

func installed(dir string, m Manifest) Installed {
	d := filepath.Join(dir, m.Name, m.Version)
	return Installed{Manifest: m, Dir: d, Binary: filepath.Join(d, m.Name)}
}

// writeInstall writes the plugin into a temporary directory beside its
// place and renames it in, so a reader never sees half an install.
func writeInstall(in Installed, bin []byte) error {
	parent := filepath.Dir(in.Dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".install-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(tmp, in.Name), bin, 0o755); err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(tmp, ManifestFile), encodeManifest(&in.Manifest), 0o644); err != nil {
		return err
	}
	old := tmp + ".old"
	if err := os.Rename(in.Dir, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, in.Dir); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

func writeSynced(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// CheckBinary reports an error wrapping ErrChecksum unless the file's
// sha256 is sum.
func CheckBinary(path, sum string) error {
	got, err := FileSHA256(path)
	if err != nil {
		return err
	}
	if got != sum {
		return fmt.Errorf("%s: %w: it is %s, the manifest says %s", path, ErrChecksum, got, sum)
	}
	return nil
}

// List returns the plugins installed in dir, by name then version (oldest
// first). Directories that do not hold a valid install are skipped.
func List(dir string) ([]Installed, error) {
	names, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing plugins: %w", err)
	}
	var out []Installed
	for _, n := range names {
		if n.IsDir() && ValidName(n.Name()) == nil {
			vs, err := versions(dir, n.Name())
			if err != nil {
				return nil, err
			}
			out = append(out, vs...)
		}
	}
	return out, nil
}

// versions lists the valid installs of one plugin, oldest first.
func versions(dir, name string) ([]Installed, error) {
	ents, err := os.ReadDir(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("listing plugin %s: %w", name, err)
	}
	var out []Installed
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if _, err := ParseVersion(e.Name()); err != nil {
			continue
		}
		m, err := ReadManifest(filepath.Join(dir, name, e.Name(), ManifestFile))
		if err != nil || m.Name != name || m.Version != e.Name() {
			continue
		}
		out = append(out, installed(dir, m))
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := ParseVersion(out[i].Version)
		b, _ := ParseVersion(out[j].Version)
		return a.Compare(b) < 0
	})
	return out, nil
}

// latest picks the highest release of vs (sorted oldest first), or the
// highest pre-release when there is no release.
func latest(vs []Installed) Installed {
	for i := len(vs) - 1; i >= 0; i-- {
		if v, _ := ParseVersion(vs[i].Version); len(v.Pre) == 0 {
			return vs[i]
		}
	}
	return vs[len(vs)-1]
}

// Resolve finds the binary for a config reference "name" (the highest
// installed release; pre-releases only when there is no release) or "name@version" in the plugin directory dir, and
// returns its path and manifest. It refuses a plugin that does not run on
// this machine; the binary's checksum is checked when it is started.
func Resolve(dir, ref string) (string, Manifest, error) {
	name, version, err := ParseRef(ref)
	if err != nil {
		return "", Manifest{}, err
	}
	var in Installed
	if version != "" {
		m, err := ReadManifest(filepath.Join(dir, name, version, ManifestFile))
		if err != nil {
			return "", Manifest{}, fmt.Errorf("plugin %s is not installed in %s: %w", ref, dir, err)
		}
		if m.Name != name || m.Version != version {
			return "", Manifest{}, fmt.Errorf("plugin %s: %s/%s/%s holds %s", ref, dir, name, version, m.Ref())
		}
		in = installed(dir, m)
	} else {
		vs, err := versions(dir, name)
		if err != nil || len(vs) == 0 {
			return "", Manifest{}, fmt.Errorf("plugin %s is not installed in %s (hook6ctl plugin install)", name, dir)
		}
		in = latest(vs)
	}
	if err := in.CheckCompatible(runtime.GOOS, runtime.GOARCH, ""); err != nil {
		return "", Manifest{}, err
	}
	return in.Binary, in.Manifest, nil
}
