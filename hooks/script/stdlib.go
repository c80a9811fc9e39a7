package script

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

// hooksImport is the import path of the SDK scripts use.
const hooksImport = "github.com/hook6/hook6/hooks"

// basePackages is the standard library every script may import: pure
// computation, encodings, hashing, time and logging. No process, file,
// network, reflection or runtime access.
var basePackages = []string{
	"bufio", "bytes", "cmp", "container/heap", "container/list", "container/ring",
	"context", "crypto/aes", "crypto/cipher", "crypto/hmac", "crypto/md5", "crypto/rand",
	"crypto/sha1", "crypto/sha256", "crypto/sha512", "crypto/subtle",
	"encoding", "encoding/base32", "encoding/base64", "encoding/binary", "encoding/csv",
	"encoding/hex", "encoding/json", "encoding/pem", "errors", "fmt",
	"hash", "hash/adler32", "hash/crc32", "hash/crc64", "hash/fnv", "hash/maphash",
	"html", "io", "io/fs", "log/slog", "maps", "math", "math/big", "math/bits",
	"math/rand", "math/rand/v2", "net/netip", "net/url", "path", "path/filepath",
	"regexp", "slices", "sort", "strconv", "strings", "sync", "sync/atomic",
	"text/tabwriter", "time", "unicode", "unicode/utf16", "unicode/utf8",
}

// networkPackages are added when the extension's allow.network is set.
var networkPackages = []string{
	"net", "net/http", "net/http/cookiejar", "net/http/httptrace", "net/textproto",
	"net/mail", "crypto/tls", "crypto/x509", "crypto/x509/pkix", "mime", "mime/multipart",
}

// filePackages are added when the extension's allow.files lists paths.
var filePackages = []string{"os"}

// removed lists symbols taken out of allowed packages: they change the
// host's global state, touch the file system or start goroutines.
var removed = map[string][]string{
	"log/slog":      {"SetDefault", "SetLogLoggerLevel"},
	"path/filepath": {"Abs", "EvalSymlinks", "Glob", "Walk", "WalkDir"},
	"net/http": {"DefaultServeMux", "Handle", "HandleFunc", "ListenAndServe", "ListenAndServeTLS",
		"Serve", "ServeTLS", "Server", "Dir", "FileServer", "FileServerFS", "ServeFile", "ServeFileFS"},
	"mime": {"AddExtensionType"},
}

// goroutineSymbols run a function on a goroutine of their own; removed
// unless allow.goroutines is set.
var goroutineSymbols = map[string][]string{
	"time":    {"AfterFunc"},
	"context": {"AfterFunc"},
}

// Allow widens what a script may use beyond the base standard library.
type Allow struct {
	// Files lists files and directories the script may read and list
	// (with package os, read-only); empty means no file access.
	Files []string
	// Network gives the net, net/http and crypto/tls packages.
	Network bool
	// Goroutines allows go statements, time.AfterFunc and context.AfterFunc.
	Goroutines bool
}

// allowedImports returns the import paths a script may use under a.
func (a Allow) allowedImports() map[string]bool {
	m := make(map[string]bool, len(basePackages)+len(networkPackages)+2)
	for _, p := range basePackages {
		m[p] = true
	}
	if a.Network {
		for _, p := range networkPackages {
			m[p] = true
		}
	}
	if len(a.Files) > 0 {
		for _, p := range filePackages {
			m[p] = true
		}
	}
	m[hooksImport] = true
	return m
}

// exports builds the symbol table of one interpreter: the allowed packages
// with variables copied (so a script assigning io.EOF changes its own copy,
// not the server's), host-global and file-system symbols removed, time.Sleep
// made to return when the interpreter is stopped, and package os replaced
// by path-checked file functions.
func exports(a Allow, stop <-chan struct{}) (interp.Exports, error) {
	allowed := a.allowedImports()
	out := make(interp.Exports, len(allowed)+1)
	for key, syms := range stdlib.Symbols {
		pkg := path.Dir(key)
		if !allowed[pkg] || pkg == "os" {
			continue
		}
		drop := make(map[string]bool)
		for _, s := range removed[pkg] {
			drop[s] = true
		}
		if !a.Goroutines {
			for _, s := range goroutineSymbols[pkg] {
				drop[s] = true
			}
		}
		cp := make(map[string]reflect.Value, len(syms))
		for name, v := range syms {
			if drop[name] {
				continue
			}
			cp[name] = copyVar(v)
		}
		out[key] = cp
	}
	if t := out["time/time"]; t != nil {
		t["Sleep"] = reflect.ValueOf(func(d time.Duration) {
			tm := time.NewTimer(d)
			defer tm.Stop()
			select {
			case <-tm.C:
			case <-stop:
			}
		})
	}
	if len(a.Files) > 0 {
		g, err := newGuard(a.Files)
		if err != nil {
			return nil, err
		}
		out["os/os"] = g.osSymbols()
		fp := out["path/filepath/filepath"]
		fp["Abs"] = reflect.ValueOf(filepath.Abs)
		fp["Glob"] = reflect.ValueOf(g.glob)
		fp["Walk"] = reflect.ValueOf(g.walk)
		fp["WalkDir"] = reflect.ValueOf(g.walkDir)
	}
	// The generic parts of cmp, maps and slices are compiled from source
	// when fmt is in the table; the table always has fmt.
	out["."] = map[string]reflect.Value{"MapTypes": reflect.ValueOf(stdlib.MapTypes)}
	return out, nil
}

// copyVar gives a package variable a private copy; anything else is
// returned as is.
func copyVar(v reflect.Value) reflect.Value {
	if !v.CanSet() {
		return v
	}
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	return c
}

// guard checks file paths against the allowed roots.
type guard struct {
	roots []string
}

func newGuard(paths []string) (*guard, error) {
	g := &guard{}
	for _, p := range paths {
		r, err := resolve(p)
		if err != nil {
			return nil, fmt.Errorf("allow.files %q: %w", p, err)
		}
		g.roots = append(g.roots, r)
	}
	return g, nil
}

// resolve makes p absolute and clean, following symbolic links as far as
// the path exists.
func resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	}
	dir, base := filepath.Split(abs)
	if dir == abs || base == "" {
		return abs, nil
	}
	d, err := resolve(filepath.Clean(dir))
	if err != nil {
		return "", err
	}
	return filepath.Join(d, base), nil
}

// check returns a permission error unless p lies under an allowed root.
func (g *guard) check(op, p string) error {
	r, err := resolve(p)
	if err == nil {
		for _, root := range g.roots {
			if r == root || strings.HasPrefix(r, strings.TrimSuffix(root, "/")+"/") {
				return nil
			}
		}
	}
	return &fs.PathError{Op: op, Path: p, Err: fs.ErrPermission}
}

// osSymbols is package os for scripts: read-only file functions that
// check their paths, the file types, modes, flags and errors; no writing,
// processes, environment, working directory or exit.
func (g *guard) osSymbols() map[string]reflect.Value {
	src := stdlib.Symbols["os/os"]
	m := make(map[string]reflect.Value, 64)
	for _, name := range []string{
		"DevNull", "IsExist", "IsNotExist", "IsPermission", "IsPathSeparator", "IsTimeout",
		"PathSeparator", "PathListSeparator", "SEEK_CUR", "SEEK_END", "SEEK_SET",
		"ErrClosed", "ErrExist", "ErrInvalid", "ErrNotExist", "ErrPermission", "ErrDeadlineExceeded",
		"DirEntry", "File", "FileInfo", "FileMode", "PathError", "LinkError", "_DirEntry", "_FileInfo",
	} {
		if v, ok := src[name]; ok {
			m[name] = copyVar(v)
		}
	}
	for name, v := range src {
		if strings.HasPrefix(name, "O_") || strings.HasPrefix(name, "Mode") {
			m[name] = copyVar(v)
		}
	}
	m["Open"] = reflect.ValueOf(func(p string) (*os.File, error) {
		if err := g.check("open", p); err != nil {
			return nil, err
		}
		return os.Open(p)
	})
	m["OpenFile"] = reflect.ValueOf(func(p string, flag int, perm os.FileMode) (*os.File, error) {
		if flag&(os.O_WRONLY|os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_TRUNC) != 0 {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission}
		}
		if err := g.check("open", p); err != nil {
			return nil, err
		}
		return os.OpenFile(p, flag, perm)
	})
	m["ReadFile"] = reflect.ValueOf(func(p string) ([]byte, error) {
		if err := g.check("open", p); err != nil {
			return nil, err
		}
		return os.ReadFile(p)
	})
	m["ReadDir"] = reflect.ValueOf(func(p string) ([]os.DirEntry, error) {
		if err := g.check("open", p); err != nil {
			return nil, err
		}
		return os.ReadDir(p)
	})
	m["Stat"] = reflect.ValueOf(func(p string) (os.FileInfo, error) {
		if err := g.check("stat", p); err != nil {
			return nil, err
		}
		return os.Stat(p)
	})
	m["Lstat"] = reflect.ValueOf(func(p string) (os.FileInfo, error) {
		if err := g.check("lstat", p); err != nil {
			return nil, err
		}
		return os.Lstat(p)
	})
	return m
}

// glob is filepath.Glob returning only allowed paths.
func (g *guard) glob(pattern string) ([]string, error) {
	all, err := filepath.Glob(pattern)
	var ok []string
	for _, p := range all {
		if g.check("glob", p) == nil {
			ok = append(ok, p)
		}
	}
	return ok, err
}

func (g *guard) walk(root string, fn filepath.WalkFunc) error {
	if err := g.check("walk", root); err != nil {
		return err
	}
	return filepath.Walk(root, fn)
}

func (g *guard) walkDir(root string, fn fs.WalkDirFunc) error {
	if err := g.check("walk", root); err != nil {
		return err
	}
	return filepath.WalkDir(root, fn)
}
