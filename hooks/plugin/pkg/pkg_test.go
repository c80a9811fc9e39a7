package pkg

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// testBinary is a real executable for this machine: the test binary.
func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func pack(t *testing.T, bin, version string, o PackOptions) (string, Manifest) {
	t.Helper()
	o.Name, o.Version = or(o.Name, "demo"), version
	if o.Points == nil {
		o.Points = []string{"generate-lease"}
	}
	if o.OutDir == "" {
		o.OutDir = t.TempDir()
	}
	path, m, err := Pack(bin, o)
	if err != nil {
		t.Fatal(err)
	}
	return path, m
}

func TestPackVerifyInstallResolve(t *testing.T) {
	bin := testBinary(t)
	path, m := pack(t, bin, "1.2.0", PackOptions{MinHook6Version: "0.1.0"})
	if want := "demo-1.2.0-" + runtime.GOOS + "-" + runtime.GOARCH + ".tar.gz"; filepath.Base(path) != want {
		t.Fatalf("archive %s, want %s", filepath.Base(path), want)
	}
	sum, _ := FileSHA256(bin)
	if m.SHA256 != sum || m.OS != runtime.GOOS || m.Arch != runtime.GOARCH || m.ProtocolVersion != ProtocolVersion {
		t.Fatalf("manifest %+v", m)
	}
	vm, err := Verify(path)
	if err != nil || vm.SHA256 != sum {
		t.Fatalf("Verify: %+v, %v", vm, err)
	}

	dir := t.TempDir()
	in, err := Install(path, dir, InstallOptions{Hook6Version: "0.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	if in.Binary != filepath.Join(dir, "demo", "1.2.0", "demo") {
		t.Fatalf("installed at %s", in.Binary)
	}
	if err := CheckBinary(in.Binary, sum); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(in.Binary); st.Mode().Perm()&0o100 == 0 {
		t.Fatalf("installed binary mode %v: not executable", st.Mode())
	}
	got, gm, err := Resolve(dir, "demo")
	if err != nil || got != in.Binary || gm.Version != "1.2.0" {
		t.Fatalf("Resolve: %s %+v %v", got, gm, err)
	}
	if _, err := Install(path, dir, InstallOptions{}); err != nil {
		t.Fatalf("installing the same archive again: %v", err)
	}
}

func TestResolvePicksHighestRelease(t *testing.T) {
	bin, dir := testBinary(t), t.TempDir()
	for _, v := range []string{"1.2.0", "1.10.0", "1.9.3", "2.0.0-rc.1"} {
		path, _ := pack(t, bin, v, PackOptions{})
		if _, err := Install(path, dir, InstallOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for ref, want := range map[string]string{"demo": "1.10.0", "demo@1.2.0": "1.2.0", "demo@2.0.0-rc.1": "2.0.0-rc.1"} {
		path, m, err := Resolve(dir, ref)
		if err != nil || m.Version != want || path != filepath.Join(dir, "demo", want, "demo") {
			t.Errorf("Resolve(%s) = %s %s %v, want %s", ref, path, m.Version, err, want)
		}
	}
	for _, ref := range []string{"demo@3.0.0", "other", "demo@x", "bad/name"} {
		if _, _, err := Resolve(dir, ref); err == nil {
			t.Errorf("Resolve(%s): want an error", ref)
		}
	}
	ins, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, in := range ins {
		vs = append(vs, in.Version)
	}
	if got := strings.Join(vs, " "); got != "1.2.0 1.9.3 1.10.0 2.0.0-rc.1" {
		t.Fatalf("List: %s", got)
	}
}

func TestInstallRefusesWrongPlatformAndHook6Version(t *testing.T) {
	script := filepath.Join(t.TempDir(), "script")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	path, _ := pack(t, script, "1.0.0", PackOptions{OS: runtime.GOOS, Arch: other})
	if _, err := Verify(path); err != nil {
		t.Fatalf("Verify of a foreign archive: %v", err)
	}
	_, err := Install(path, t.TempDir(), InstallOptions{})
	if err == nil || !strings.Contains(err.Error(), "built for "+runtime.GOOS+"/"+other) {
		t.Fatalf("Install of %s: %v", other, err)
	}

	path, _ = pack(t, testBinary(t), "1.0.0", PackOptions{MinHook6Version: "2.0.0"})
	_, err = Install(path, t.TempDir(), InstallOptions{Hook6Version: "1.9.0"})
	if err == nil || !strings.Contains(err.Error(), "needs hook6 2.0.0") {
		t.Fatalf("Install needing a newer hook6: %v", err)
	}

	// Pack refuses to write a manifest that contradicts the binary's
	// header, and Verify refuses such an archive written by other means.
	_, _, err = Pack(testBinary(t), PackOptions{Name: "x", Version: "1.0.0", Points: []string{"generate-lease"},
		OS: runtime.GOOS, Arch: other, OutDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "it is built for") {
		t.Fatalf("Pack with --arch %s: %v", other, err)
	}
	lie := writeTar(t, manifestFor(t, "x", testBinary(t), func(m *Manifest) { m.Arch = other }), "x", testBinary(t))
	if _, err := Verify(lie); err == nil || !strings.Contains(err.Error(), "the manifest says") {
		t.Fatalf("Verify of a binary built for another arch than its manifest: %v", err)
	}
}

func manifestFor(t *testing.T, name, bin string, edit func(*Manifest)) Manifest {
	t.Helper()
	sum, err := FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{Name: name, Version: "1.0.0", ProtocolVersion: ProtocolVersion, Points: []string{"generate-lease"},
		SHA256: sum, OS: runtime.GOOS, Arch: runtime.GOARCH}
	edit(&m)
	return m
}

// writeTar writes an archive by hand, so it can hold what Pack never writes.
func writeTar(t *testing.T, m Manifest, binName, bin string, extra ...string) string {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x.tar.gz")
	f, _ := os.Create(path)
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	files := [][2]string{{ManifestFile, string(encodeManifest(&m))}, {binName, string(data)}}
	for _, e := range extra {
		files = append(files, [2]string{e, "x"})
	}
	for _, fl := range files {
		tw.WriteHeader(&tar.Header{Name: fl[0], Mode: 0o755, Size: int64(len(fl[1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(fl[1]))
	}
	tw.Close()
	zw.Close()
	f.Close()
	return path
}

func TestVerifyRefusesBadArchives(t *testing.T) {
	bin := testBinary(t)
	flipped := filepath.Join(t.TempDir(), "x")
	data, _ := os.ReadFile(bin)
	data[len(data)/2] ^= 1
	os.WriteFile(flipped, data, 0o755)
	goodSum, _ := FileSHA256(bin)
	cases := map[string]struct {
		path string
		want string
	}{
		"checksum": {writeTar(t, manifestFor(t, "x", bin, func(*Manifest) {}), "x", flipped), "sha256 does not match"},
		"protocol": {writeTar(t, manifestFor(t, "x", bin, func(m *Manifest) { m.ProtocolVersion = 2 }), "x", bin), "plugin protocol 2"},
		"point":    {writeTar(t, manifestFor(t, "x", bin, func(m *Manifest) { m.Points = []string{"nowhere"} }), "x", bin), "unknown extension point"},
		"name":     {writeTar(t, manifestFor(t, "x", bin, func(*Manifest) {}), "y", bin), `binary "x"`},
		"extra":    {writeTar(t, manifestFor(t, "x", bin, func(*Manifest) {}), "x", bin, "README"), "unexpected entry"},
		"path":     {writeTar(t, manifestFor(t, "x", bin, func(*Manifest) {}), "../x", bin), "plain files"},
		"sha":      {writeTar(t, manifestFor(t, "x", bin, func(m *Manifest) { m.SHA256 = strings.ToUpper(goodSum) }), "x", bin), "lower-case hex"},
	}
	for name, tc := range cases {
		_, err := Verify(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Verify: %v, want %q", name, err, tc.want)
		}
		if _, ierr := Install(tc.path, t.TempDir(), InstallOptions{}); ierr == nil {
			t.Errorf("%s: Install accepted it", name)
		}
	}
	if _, err := Verify(cases["checksum"].path); !errors.Is(err, ErrChecksum) {
		t.Errorf("checksum error %v does not wrap ErrChecksum", err)
	}
}

func TestInstallOverAnotherBinaryNeedsForce(t *testing.T) {
	dir := t.TempDir()
	a, _ := pack(t, testBinary(t), "1.0.0", PackOptions{})
	script := filepath.Join(t.TempDir(), "script")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	b, mb := pack(t, script, "1.0.0", PackOptions{OS: runtime.GOOS, Arch: runtime.GOARCH})
	if _, err := Install(a, dir, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(b, dir, InstallOptions{}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("installing another binary as the same version: %v", err)
	}
	in, err := Install(b, dir, InstallOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckBinary(in.Binary, mb.SHA256); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "demo"))
	if len(ents) != 1 {
		t.Fatalf("plugin dir holds %d entries after a forced install, want 1", len(ents))
	}
}

func TestCheckBinaryDetectsOneByte(t *testing.T) {
	p := filepath.Join(t.TempDir(), "b")
	os.WriteFile(p, []byte("hello plugin"), 0o755)
	sum := sha256.Sum256([]byte("hello plugin"))
	if err := CheckBinary(p, hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("hello plugiN"), 0o755)
	if err := CheckBinary(p, hex.EncodeToString(sum[:])); !errors.Is(err, ErrChecksum) {
		t.Fatalf("CheckBinary after a one-byte change: %v", err)
	}
}

func TestVersions(t *testing.T) {
	order := []string{"0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"}
	for i := range order {
		for j := range order {
			a, err1 := ParseVersion(order[i])
			b, err2 := ParseVersion(order[j])
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%s vs %s: %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	for _, bad := range []string{"1", "1.2", "1.2.x", "01.2.3", "1.2.3-", "1.2.3-a..b", "v1.2.3"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q): want an error", bad)
		}
	}
	if v, err := ParseVersion("1.2.3+build.5"); err != nil || v.Patch != 3 {
		t.Errorf("build metadata: %+v %v", v, err)
	}
}

func TestBinaryPlatform(t *testing.T) {
	goos, goarch, err := BinaryPlatform(testBinary(t))
	if err != nil || goos != runtime.GOOS || goarch != runtime.GOARCH {
		t.Fatalf("BinaryPlatform = %s/%s %v", goos, goarch, err)
	}
	p := filepath.Join(t.TempDir(), "text")
	os.WriteFile(p, []byte("not a binary"), 0o644)
	if _, _, err := BinaryPlatform(p); err == nil {
		t.Fatal("BinaryPlatform of a text file: want an error")
	}
}
