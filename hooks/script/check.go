package script

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hook6/hook6/hooks"
)

// CompileError is one error found while compiling a script, at file:line.
type CompileError struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *CompileError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// CompileErrors is every error found in one script, in source order.
type CompileErrors []*CompileError

func (es CompileErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// source is a parsed script: what the checks found and what the
// interpreter needs.
type source struct {
	file    string // as given by the user, for messages
	src     []byte
	pkg     string            // package name
	funcs   map[string]bool   // top-level function names
	funcPos map[string]string // name → file:line, for messages
	hasInit bool
	// blocking is the first import through which the script can block in
	// compiled code, where stopping its interpreter does not reach it;
	// empty when it cannot (see blockingImports).
	blocking string
}

// blockingImports are the allowed packages whose functions can block in
// compiled code: a lock or wait group (package sync), a file or a
// connection. Everything else a script can wait on is interpreted (loops,
// channel operations) or made stoppable (time.Sleep), so stopping the
// interpreter ends the call.
func blockingImports() map[string]bool {
	m := map[string]bool{"sync": true}
	for _, p := range append(slices.Clone(filePackages), networkPackages...) {
		m[p] = true
	}
	return m
}

// parse reads and checks a script before the interpreter sees it: imports
// inside the allow-list, no go statement unless allowed, no main, none of
// the language features the interpreter lacks.
func parse(file string, src []byte, allow Allow) (*source, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.SkipObjectResolution)
	if err != nil {
		var list scanner.ErrorList
		if errors.As(err, &list) {
			var out CompileErrors
			for _, e := range list {
				out = append(out, &CompileError{File: file, Line: e.Pos.Line, Col: e.Pos.Column, Msg: e.Msg})
			}
			return nil, out
		}
		return nil, CompileErrors{{File: file, Msg: err.Error()}}
	}
	s := &source{file: file, src: src, pkg: f.Name.Name, funcs: map[string]bool{}, funcPos: map[string]string{}}
	var errs CompileErrors
	at := func(p token.Pos, format string, args ...any) {
		pos := fset.Position(p)
		errs = append(errs, &CompileError{File: file, Line: pos.Line, Col: pos.Column, Msg: fmt.Sprintf(format, args...)})
	}
	allowed, blocking := allow.allowedImports(), blockingImports()
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		if !allowed[p] {
			at(im.Pos(), "import %q is not allowed%s", p, importHint(p))
		}
		if blocking[p] && s.blocking == "" {
			s.blocking = p
		}
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv != nil {
			continue
		}
		name := fd.Name.Name
		s.funcs[name] = true
		s.funcPos[name] = fmt.Sprintf("%s:%d", file, fset.Position(fd.Pos()).Line)
		switch {
		case name == "main":
			at(fd.Pos(), "a script defines no main function (it is loaded, not run)")
		case name == "Init":
			s.hasInit = true
			if !isInitSig(fd.Type) {
				at(fd.Pos(), "Init must be func Init(args map[string]string) error")
			}
		default:
			if p, err := hooks.ParsePoint(name); err == nil && name == p.FuncName() && !isPointSig(fd.Type) {
				at(fd.Pos(), "%s must be func %s(c *hooks.Context) error", name, name)
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			if !allow.Goroutines {
				at(n.Pos(), "go statements are not allowed (set allow.goroutines in the extension's config)")
			}
		case *ast.RangeStmt:
			if rangesOverInt(n.X) {
				at(n.X.Pos(), "range over an integer is not supported by the script interpreter (Go 1.22 dialect): use a three-clause for loop")
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "min" || id.Name == "max" || id.Name == "clear") && !s.funcs[id.Name] && !declared(f, id.Name) {
				at(n.Pos(), "builtin %s is not supported by the script interpreter (Go 1.22 dialect): write it out", id.Name)
			}
		}
		return true
	})
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

func importHint(p string) string {
	switch p {
	case "os", "io/ioutil":
		return " (set allow.files to give os with file access to listed paths)"
	case "net", "net/http", "crypto/tls":
		return " (set allow.network)"
	}
	return ""
}

// declared reports whether name is declared at the top level of f (a
// script may define its own min).
func declared(f *ast.File, name string) bool {
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok {
			for _, sp := range gd.Specs {
				if vs, ok := sp.(*ast.ValueSpec); ok {
					for _, n := range vs.Names {
						if n.Name == name {
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// rangesOverInt spots the forms of range over an integer that can be
// seen without type checking: a literal, len(x), cap(x).
func rangesOverInt(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.BasicLit:
		return x.Kind == token.INT
	case *ast.CallExpr:
		id, ok := x.Fun.(*ast.Ident)
		return ok && (id.Name == "len" || id.Name == "cap")
	case *ast.ParenExpr:
		return rangesOverInt(x.X)
	}
	return false
}

// isPointSig reports whether t is func(*hooks.Context) error, whatever the
// hooks package is named in the file.
func isPointSig(t *ast.FuncType) bool {
	if t.TypeParams != nil || t.Params == nil || len(t.Params.List) != 1 || len(t.Params.List[0].Names) > 1 {
		return false
	}
	star, ok := t.Params.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Context" && returnsError(t)
}

// isInitSig reports whether t is func(map[string]string) error.
func isInitSig(t *ast.FuncType) bool {
	if t.TypeParams != nil || t.Params == nil || len(t.Params.List) != 1 || len(t.Params.List[0].Names) > 1 {
		return false
	}
	m, ok := t.Params.List[0].Type.(*ast.MapType)
	if !ok || !isIdent(m.Key, "string") || !isIdent(m.Value, "string") {
		return false
	}
	return returnsError(t)
}

func returnsError(t *ast.FuncType) bool {
	return t.Results != nil && len(t.Results.List) == 1 && len(t.Results.List[0].Names) <= 1 &&
		isIdent(t.Results.List[0].Type, "error")
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// posRE finds a file:line:col position at the start of an interpreter
// error.
var posRE = regexp.MustCompile(`^(.*?):(\d+):(\d+): (.*)$`)

// interpError turns an interpreter error into CompileErrors, naming the
// script's file instead of the name the interpreter knew it by.
func interpError(file, fsName string, err error) error {
	var list scanner.ErrorList
	if errors.As(err, &list) {
		var out CompileErrors
		for _, e := range list {
			out = append(out, &CompileError{File: file, Line: e.Pos.Line, Col: e.Pos.Column, Msg: e.Msg})
		}
		return out
	}
	var out CompileErrors
	for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if m := posRE.FindStringSubmatch(line); m != nil && (m[1] == fsName || strings.HasSuffix(m[1], fsName)) {
			l, _ := strconv.Atoi(m[2])
			c, _ := strconv.Atoi(m[3])
			out = append(out, &CompileError{File: file, Line: l, Col: c, Msg: m[4]})
			continue
		}
		out = append(out, &CompileError{File: file, Msg: strings.ReplaceAll(line, fsName, file)})
	}
	return out
}
