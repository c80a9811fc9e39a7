// Package pkg packages hook6 plugin binaries and manages the plugin
// directory: Pack writes NAME-VERSION-OS-ARCH.tar.gz holding the binary and
// its manifest, Verify checks such an archive, Install unpacks it into
// DIR/NAME/VERSION/, List shows what is installed and Resolve turns a config
// reference ("name" or "name@version") into the binary to start.
//
// It imports only the standard library and package hooks, so the CLI and the
// runtime share it without pulling in go-plugin.
package pkg

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/hook6/hook6/hooks"
)

// ProtocolVersion is the plugin protocol version this hook6 speaks (the
// go-plugin handshake's protocol version). See hooks/plugin/proto for the
// rule that decides when it changes.
const ProtocolVersion = 1

// ManifestFile is the manifest's file name, in archives and installed
// plugin directories.
const ManifestFile = "manifest.json"

// Manifest describes one packed or installed plugin. The binary beside it
// is named after the plugin.
type Manifest struct {
	Name            string   `json:"name"`
	Version         string   `json:"version"`
	ProtocolVersion int      `json:"protocol-version"`
	Points          []string `json:"points"`
	SHA256          string   `json:"sha256"` // of the binary, lower-case hex
	OS              string   `json:"os"`
	Arch            string   `json:"arch"`
	MinHook6Version string   `json:"min-hook6-version,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName reports an error unless name is a plugin name: letters,
// digits, '.', '_' and '-', starting with a letter or digit (as config
// names).
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("plugin name %q: want letters, digits, '.', '_' or '-' (at most 64)", name)
	}
	return nil
}

// Validate checks that every field is well-formed.
func (m *Manifest) Validate() error {
	if err := ValidName(m.Name); err != nil {
		return err
	}
	if _, err := ParseVersion(m.Version); err != nil {
		return fmt.Errorf("plugin %s: %w", m.Name, err)
	}
	if m.ProtocolVersion < 1 {
		return fmt.Errorf("plugin %s: protocol-version %d: want 1 or more", m.Name, m.ProtocolVersion)
	}
	if len(m.Points) == 0 {
		return fmt.Errorf("plugin %s: no points", m.Name)
	}
	for _, p := range m.Points {
		pt, err := hooks.ParsePoint(p)
		if err != nil {
			return fmt.Errorf("plugin %s: %w", m.Name, err)
		}
		if pt.String() != p {
			return fmt.Errorf("plugin %s: point %q: write it as %q", m.Name, p, pt.String())
		}
	}
	if b, err := hex.DecodeString(m.SHA256); err != nil || len(b) != 32 || strings.ToLower(m.SHA256) != m.SHA256 {
		return fmt.Errorf("plugin %s: sha256 %q: want 64 lower-case hex digits", m.Name, m.SHA256)
	}
	if m.OS == "" || m.Arch == "" {
		return fmt.Errorf("plugin %s: os and arch are required", m.Name)
	}
	if m.MinHook6Version != "" {
		if _, err := ParseVersion(m.MinHook6Version); err != nil {
			return fmt.Errorf("plugin %s: min-hook6-version: %w", m.Name, err)
		}
	}
	return nil
}

// Ref is the manifest's reference, "name@version".
func (m *Manifest) Ref() string { return m.Name + "@" + m.Version }

// ArchiveName is the file name Pack gives the archive:
// NAME-VERSION-OS-ARCH.tar.gz.
func (m *Manifest) ArchiveName() string {
	return fmt.Sprintf("%s-%s-%s-%s.tar.gz", m.Name, m.Version, m.OS, m.Arch)
}

// HookPoints returns the manifest's points as hooks.Point values.
func (m *Manifest) HookPoints() ([]hooks.Point, error) {
	ps := make([]hooks.Point, 0, len(m.Points))
	for _, s := range m.Points {
		p, err := hooks.ParsePoint(s)
		if err != nil {
			return nil, fmt.Errorf("plugin %s: %w", m.Name, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// CheckCompatible reports why this hook6 cannot run the plugin: another
// plugin protocol, another platform, or a newer hook6 required. hook6Version
// "" skips the last check (development builds).
func (m *Manifest) CheckCompatible(goos, goarch, hook6Version string) error {
	if m.ProtocolVersion != ProtocolVersion {
		return fmt.Errorf("plugin %s speaks plugin protocol %d; this hook6 speaks %d", m.Ref(), m.ProtocolVersion, ProtocolVersion)
	}
	if m.OS != goos || m.Arch != goarch {
		return fmt.Errorf("plugin %s is built for %s/%s; this machine is %s/%s", m.Ref(), m.OS, m.Arch, goos, goarch)
	}
	if m.MinHook6Version == "" || hook6Version == "" {
		return nil
	}
	have, err := ParseVersion(hook6Version)
	if err != nil {
		return fmt.Errorf("hook6 version: %w", err)
	}
	want, _ := ParseVersion(m.MinHook6Version)
	if have.Compare(want) < 0 {
		return fmt.Errorf("plugin %s needs hook6 %s or newer; this is %s", m.Ref(), m.MinHook6Version, hook6Version)
	}
	return nil
}

func decodeManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("reading %s: %w", ManifestFile, err)
	}
	return m, m.Validate()
}

func encodeManifest(m *Manifest) []byte {
	b, _ := json.MarshalIndent(m, "", "  ") // plain struct: cannot fail
	return append(b, '\n')
}

// ReadManifest reads and validates a manifest file.
func ReadManifest(path string) (Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Manifest{}, err
	}
	m, err := decodeManifest(b)
	if err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}
