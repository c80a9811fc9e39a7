package pkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// maxBinary bounds the binary read from an archive (a plugin is one Go
// executable; 1 GiB is far beyond any).
const maxBinary = 1 << 30

// PackOptions says what to write into the manifest.
type PackOptions struct {
	Name    string
	Version string
	// Points the plugin implements, config names ("generate-lease").
	Points []string
	// MinHook6Version is the oldest hook6 the plugin runs with ("" any).
	MinHook6Version string
	// OS and Arch default to what the binary's header says.
	OS, Arch string
	// OutDir is where the archive is written ("" the current directory).
	OutDir string
}

// Pack writes OutDir/NAME-VERSION-OS-ARCH.tar.gz holding binary (renamed
// to NAME) and manifest.json, and returns the archive's path.
func Pack(binary string, o PackOptions) (string, Manifest, error) {
	m := Manifest{Name: o.Name, Version: o.Version, ProtocolVersion: ProtocolVersion,
		Points: o.Points, OS: o.OS, Arch: o.Arch, MinHook6Version: o.MinHook6Version}
	goos, goarch, err := BinaryPlatform(binary)
	switch {
	case err != nil && (m.OS == "" || m.Arch == ""):
		return "", m, fmt.Errorf("packing %s: %w (give --os and --arch)", binary, err)
	case err == nil && (or(m.OS, goos) != goos || or(m.Arch, goarch) != goarch):
		return "", m, fmt.Errorf("packing %s: it is built for %s/%s, not %s/%s", binary, goos, goarch, or(m.OS, goos), or(m.Arch, goarch))
	case err == nil:
		m.OS, m.Arch = goos, goarch
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return "", m, fmt.Errorf("packing: %w", err)
	}
	sum := sha256.Sum256(bin)
	m.SHA256 = hex.EncodeToString(sum[:])
	if err := m.Validate(); err != nil {
		return "", m, fmt.Errorf("packing %s: %w", binary, err)
	}
	out := filepath.Join(o.OutDir, m.ArchiveName())
	if err := writeArchive(out, &m, bin); err != nil {
		return "", m, fmt.Errorf("packing %s: %w", binary, err)
	}
	return out, m, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func writeArchive(path string, m *Manifest, bin []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pack-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := gzip.NewWriter(tmp)
	tw := tar.NewWriter(zw)
	now := time.Now().UTC().Truncate(time.Second)
	files := []struct {
		name string
		mode int64
		data []byte
	}{{ManifestFile, 0o644, encodeManifest(m)}, {m.Name, 0o755, bin}}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ErrChecksum is wrapped by every error about a binary that does not match
// its manifest's sha256.
var ErrChecksum = errors.New("sha256 does not match the manifest")

// Verify reads an archive written by Pack and checks it: exactly a manifest
// and a binary, a valid manifest for this plugin protocol, the binary's
// sha256 and platform as the manifest says. It does not check that the
// plugin runs on this machine (Install does).
func Verify(archive string) (Manifest, error) {
	m, _, err := readArchive(archive)
	return m, err
}

func readArchive(archive string) (Manifest, []byte, error) {
	var m Manifest
	f, err := os.Open(archive)
	if err != nil {
		return m, nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return m, nil, fmt.Errorf("%s: not a gzip archive: %w", archive, err)
	}
	files, err := readTar(tar.NewReader(zr))
	if err != nil {
		return m, nil, fmt.Errorf("%s: %w", archive, err)
	}
	mb, ok := files[ManifestFile]
	if !ok {
		return m, nil, fmt.Errorf("%s: no %s", archive, ManifestFile)
	}
	if m, err = decodeManifest(mb); err != nil {
		return m, nil, fmt.Errorf("%s: %w", archive, err)
	}
	bin, ok := files[m.Name]
	if !ok || len(files) != 2 {
		return m, nil, fmt.Errorf("%s: want exactly %s and the binary %q", archive, ManifestFile, m.Name)
	}
	if m.ProtocolVersion != ProtocolVersion {
		return m, nil, fmt.Errorf("%s: plugin %s speaks plugin protocol %d; this hook6 speaks %d", archive, m.Ref(), m.ProtocolVersion, ProtocolVersion)
	}
	if sum := sha256.Sum256(bin); hex.EncodeToString(sum[:]) != m.SHA256 {
		return m, nil, fmt.Errorf("%s: binary %s: %w (%s)", archive, m.Name, ErrChecksum, m.SHA256)
	}
	goos, goarch, err := platformOf(bytes.NewReader(bin))
	if err != nil && !errors.Is(err, errNotExecutable) {
		return m, nil, fmt.Errorf("%s: binary %s: %w", archive, m.Name, err)
	}
	if err == nil && (goos != m.OS || goarch != m.Arch) {
		return m, nil, fmt.Errorf("%s: binary %s is built for %s/%s, the manifest says %s/%s", archive, m.Name, goos, goarch, m.OS, m.Arch)
	}
	return m, bin, nil
}

func readTar(tr *tar.Reader) (map[string][]byte, error) {
	files := make(map[string][]byte, 2)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Name != filepath.Base(hdr.Name) || hdr.Name == "." || hdr.Name == ".." {
			return nil, fmt.Errorf("unexpected entry %q: want plain files at the top level", hdr.Name)
		}
		if _, dup := files[hdr.Name]; dup || len(files) == 2 {
			return nil, fmt.Errorf("unexpected entry %q: want exactly %s and the binary", hdr.Name, ManifestFile)
		}
		if hdr.Size > maxBinary {
			return nil, fmt.Errorf("entry %q is %d bytes, more than %d", hdr.Name, hdr.Size, maxBinary)
		}
		b := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, b); err != nil {
			return nil, fmt.Errorf("reading %q: %w", hdr.Name, err)
		}
		files[hdr.Name] = b
	}
}

// FileSHA256 returns the sha256 of a file, lower-case hex.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
