package config

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// maxNesting bounds how deep aliases and "<<" merges may chain, so a
// self-referencing anchor ends in an error rather than a loop.
const maxNesting = 32

// decoder turns the YAML syntax tree into Config values. It is strict: a
// key that names no field, or a value of the wrong kind, is an error. For
// every field path it meets it records the line, so that the checks made
// after decoding can point at the line of the field they concern.
type decoder struct {
	file    string
	anchors map[string][]*ast.AnchorNode
	lines   map[string]int  // field path → line of its key (or list entry)
	set     map[string]bool // field path → a non-null value was given
	bad     map[string]bool // field path → a problem was already reported
	errs    Errors
}

// decodeFile parses data and decodes it into a Config. The Config is nil
// only when the YAML itself cannot be parsed; problems are in d.errs.
func decodeFile(name string, data []byte) (*Config, *decoder) {
	d := &decoder{
		file:    name,
		anchors: map[string][]*ast.AnchorNode{},
		lines:   map[string]int{"": 1},
		set:     map[string]bool{},
		bad:     map[string]bool{},
	}
	f, err := parseYAML(data)
	if err != nil {
		d.syntaxError(err, data)
		return nil, d
	}
	c := &Config{File: name}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || isEmptyDocument(doc.Body) {
			continue
		}
		if body != nil {
			d.report("", lineOf(doc.Body), "only one YAML document is allowed")
			continue
		}
		body = doc.Body
		d.collectAnchors(body)
	}
	if body != nil {
		d.decode("", body, reflect.ValueOf(c).Elem())
	}
	return c, d
}

// parseYAML runs goccy's parser, turning a panic inside it into an error
// so that no input can bring the daemon down.
func parseYAML(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("YAML parser failed: %v", r)
		}
	}()
	return parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
}

// syntaxError reports what goccy's parser refused. goccy cannot read a
// plain IPv6 address starting with ':' inside a flow mapping ({...}); the
// message then says how to write it.
func (d *decoder) syntaxError(err error, data []byte) {
	msg, line := err.Error(), 0
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
	}
	if lines := strings.Split(string(data), "\n"); line > 0 && line <= len(lines) {
		if text := lines[line-1]; strings.Contains(text, "{") && strings.Contains(text, "::") {
			msg += ` (inside { } write IPv6 addresses in quotes, e.g. "::1")`
		}
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: "invalid YAML: " + msg})
}

func isEmptyDocument(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, comment := n.(*ast.CommentGroupNode)
	return comment
}

// lineOf gives the line a node starts on, 0 if unknown.
func lineOf(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// fail reports a problem with the value of the field at path: on the line
// of its key when known (an alias's target may be elsewhere), else on line.
// Checks made after decoding say nothing more about that field.
func (d *decoder) fail(path string, line int, format string, args ...any) {
	d.bad[path] = true
	if l, ok := d.lines[path]; ok && path != "" {
		line = l
	}
	d.report(path, line, format, args...)
}

// report records a problem found on line about the field at path.
func (d *decoder) report(path string, line int, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// collectAnchors indexes every anchor so aliases can find theirs.
func (d *decoder) collectAnchors(n ast.Node) {
	switch n := n.(type) {
	case *ast.AnchorNode:
		if n.Name != nil {
			name := n.Name.GetToken().Value
			d.anchors[name] = append(d.anchors[name], n)
		}
		d.collectAnchors(n.Value)
	case *ast.TagNode:
		d.collectAnchors(n.Value)
	case *ast.MappingNode:
		for _, v := range n.Values {
			d.collectAnchors(v)
		}
	case *ast.MappingValueNode:
		if n.Key != nil {
			d.collectAnchors(n.Key)
		}
		d.collectAnchors(n.Value)
	case *ast.SequenceNode:
		for _, v := range n.Values {
			d.collectAnchors(v)
		}
	}
}

// anchorFor gives the anchor an alias refers to: the last one of that name
// defined before the alias.
func (d *decoder) anchorFor(a *ast.AliasNode) (*ast.AnchorNode, string) {
	if a.Value == nil || a.Value.GetToken() == nil {
		return nil, ""
	}
	name := a.Value.GetToken().Value
	pos := a.GetToken().Position.Offset
	var found *ast.AnchorNode
	for _, an := range d.anchors[name] {
		if an.GetToken().Position.Offset < pos {
			found = an
		}
	}
	return found, name
}

// resolve follows aliases and unwraps anchors and tags down to the node
// holding the value. nil stands for null.
func (d *decoder) resolve(n ast.Node) (ast.Node, error) {
	for range maxNesting {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			an, name := d.anchorFor(v)
			if an == nil {
				return nil, fmt.Errorf("alias *%s refers to no anchor defined before it", name)
			}
			n = an.Value
		case *ast.NullNode:
			return nil, nil
		default:
			return n, nil
		}
	}
	return nil, errors.New("aliases nest too deeply")
}

// decode sets v from node n, found at path.
func (d *decoder) decode(path string, n ast.Node, v reflect.Value) {
	line := lineOf(n)
	r, err := d.resolve(n)
	if err != nil {
		d.fail(path, line, "%v", err)
		return
	}
	if r == nil {
		return // null: the field keeps its zero value, as if absent
	}
	d.set[path] = true
	d.value(path, r, v)
}

func (d *decoder) value(path string, n ast.Node, v reflect.Value) {
	if d.special(path, n, v) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(path, n, v.Elem())
	case reflect.Struct:
		d.structure(path, n, v)
	case reflect.Map:
		d.mapping(path, n, v)
	case reflect.Slice:
		d.sequence(path, n, v)
	case reflect.String:
		s, ok := scalarText(n)
		if !ok {
			d.fail(path, lineOf(n), "expected a string, got %s", describe(n))
			return
		}
		v.SetString(s)
	case reflect.Int:
		d.integer(path, n, v)
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.fail(path, lineOf(n), "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b.Value)
	default:
		d.fail(path, lineOf(n), "cannot decode into %s", v.Type())
	}
}

// special decodes the types written as one string: durations, hex bytes,
// IPv6 addresses and prefixes. It tells whether v was one of them.
func (d *decoder) special(path string, n ast.Node, v reflect.Value) bool {
	var parse func(string) error
	var want string
	switch p := v.Addr().Interface().(type) {
	case *Duration:
		want = "a duration"
		parse = func(s string) (err error) { *p, err = ParseDuration(s); return err }
	case *HexBytes:
		want = "hex octets"
		parse = func(s string) (err error) { *p, err = ParseHexBytes(s); return err }
	case *netip.Addr:
		want = "an IPv6 address"
		parse = func(s string) (err error) { *p, err = parseAddr(s); return err }
	case *netip.Prefix:
		want = "an IPv6 prefix"
		parse = func(s string) (err error) { *p, err = parsePrefix(s); return err }
	default:
		return false
	}
	s, ok := scalarText(n)
	if !ok {
		d.fail(path, lineOf(n), "expected %s, got %s", want, describe(n))
		return true
	}
	if err := parse(s); err != nil {
		d.fail(path, lineOf(n), "%v", err)
	}
	return true
}

func (d *decoder) integer(path string, n ast.Node, v reflect.Value) {
	in, ok := n.(*ast.IntegerNode)
	if !ok {
		d.fail(path, lineOf(n), "expected an integer, got %s", describe(n))
		return
	}
	var x int64
	switch iv := in.Value.(type) {
	case int64:
		x = iv
	case uint64:
		if iv > uint64(1<<(v.Type().Bits()-1)-1) {
			d.fail(path, lineOf(n), "integer %s is too large", in.GetToken().Value)
			return
		}
		x = int64(iv)
	}
	if v.OverflowInt(x) {
		d.fail(path, lineOf(n), "integer %s is too large", in.GetToken().Value)
		return
	}
	v.SetInt(x)
}

// entry is one key: value pair of a mapping.
type entry struct {
	key   string
	line  int
	value ast.Node
}

// entries lists a mapping's pairs: those written in it, then those merged
// in with "<<" whose keys it does not set itself. ok is false when n is
// not a mapping.
func (d *decoder) entries(path string, n ast.Node, depth int) (es []entry, ok bool) {
	var mvs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		mvs = m.Values
	case *ast.MappingValueNode:
		mvs = []*ast.MappingValueNode{m}
	default:
		return nil, false
	}
	seen := map[string]int{}
	var merged []entry
	for _, mv := range mvs {
		if mv == nil || mv.Key == nil {
			continue
		}
		if mv.Key.IsMergeKey() {
			merged = append(merged, d.mergeEntries(path, mv.Value, depth)...)
			continue
		}
		kn, err := d.resolve(mv.Key)
		key, isText := scalarText(kn)
		line := lineOf(mv.Key)
		if err != nil || kn == nil || !isText {
			d.report(path, line, "mapping keys must be plain strings, got %s", describe(kn))
			continue
		}
		if first, dup := seen[key]; dup {
			d.report(join(path, key), line, "duplicate key %q (first given on line %d)", key, first)
			continue
		}
		seen[key] = line
		es = append(es, entry{key: key, line: line, value: mv.Value})
	}
	for _, e := range merged {
		if _, dup := seen[e.key]; !dup {
			seen[e.key] = e.line
			es = append(es, e)
		}
	}
	return es, true
}

// mergeEntries gives the pairs a "<<" key brings in: from one mapping, or
// from a list of mappings where earlier ones win.
func (d *decoder) mergeEntries(path string, n ast.Node, depth int) []entry {
	line := lineOf(n)
	if depth >= maxNesting {
		d.report(path, line, "merges (<<) nest too deeply")
		return nil
	}
	r, err := d.resolve(n)
	if err != nil {
		d.report(path, line, "%v", err)
		return nil
	}
	srcs := []ast.Node{r}
	if seq, ok := r.(*ast.SequenceNode); ok {
		srcs = seq.Values
	}
	var out []entry
	for _, src := range srcs {
		m, err := d.resolve(src)
		if err == nil {
			var es []entry
			var ok bool
			if es, ok = d.entries(path, m, depth+1); ok {
				out = append(out, es...)
				continue
			}
		}
		d.report(path, lineOf(src), "<< must merge a mapping or a list of mappings, got %s", describe(m))
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) structure(path string, n ast.Node, v reflect.Value) {
	es, ok := d.entries(path, n, 0)
	if !ok {
		d.fail(path, lineOf(n), "expected a mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	for _, e := range es {
		p := join(path, e.key)
		d.lines[p] = e.line
		i := fieldIndex(t, e.key)
		if i < 0 {
			d.fail(p, e.line, "%s", unknownField(e.key, t))
			continue
		}
		d.decode(p, e.value, v.Field(i))
	}
}

// fieldName gives the YAML key of a struct field, "" if it has none.
func fieldName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

func fieldIndex(t reflect.Type, key string) int {
	for i := range t.NumField() {
		if name := fieldName(t.Field(i)); name != "" && name == key {
			return i
		}
	}
	return -1
}

// unknownField words the error for a key that names no field, suggesting
// the field it most likely misspells.
func unknownField(key string, t reflect.Type) string {
	var names []string
	best, bestDist := "", len(key)/3+2
	for i := range t.NumField() {
		name := fieldName(t.Field(i))
		if name == "" {
			continue
		}
		names = append(names, name)
		if dist := editDistance(key, name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown field %q (did you mean %q?)", key, best)
	}
	return fmt.Sprintf("unknown field %q (known fields: %s)", key, strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) mapping(path string, n ast.Node, v reflect.Value) {
	es, ok := d.entries(path, n, 0)
	if !ok {
		d.fail(path, lineOf(n), "expected a mapping, got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	et := v.Type().Elem()
	for _, e := range es {
		p := join(path, e.key)
		d.lines[p] = e.line
		ev := reflect.New(et).Elem()
		if et.Kind() == reflect.Pointer {
			ev.Set(reflect.New(et.Elem())) // "name:" alone is an entry with every default
		}
		d.decode(p, e.value, ev)
		v.SetMapIndex(reflect.ValueOf(e.key), ev)
	}
}

func (d *decoder) sequence(path string, n ast.Node, v reflect.Value) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.fail(path, lineOf(n), "expected a list, got %s", describe(n))
		return
	}
	et := v.Type().Elem()
	s := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
	for i, en := range seq.Values {
		p := path + "[" + strconv.Itoa(i) + "]"
		line := lineOf(en)
		d.lines[p] = line
		if et.Kind() == reflect.Pointer {
			s.Index(i).Set(reflect.New(et.Elem()))
		}
		if r, err := d.resolve(en); err == nil && r == nil {
			d.fail(p, line, "empty list entry")
			continue
		}
		d.decode(p, en, s.Index(i))
	}
	v.Set(s)
}

// scalarText gives the text of a scalar as written. It also mends what
// goccy's parser makes of an IPv6 address inside a flow list inside a flow
// mapping ({dns-servers: [2001:db8::53]}): a one-pair mapping 2001:
// "db8::53" whose key, colon and value touch.
func scalarText(n ast.Node) (string, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.LiteralNode:
		if n.Value == nil {
			return "", true
		}
		return n.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	case *ast.MappingNode:
		if len(n.Values) == 1 {
			return touchingPair(n.Values[0])
		}
	case *ast.MappingValueNode:
		return touchingPair(n)
	}
	return "", false
}

func touchingPair(mv *ast.MappingValueNode) (string, bool) {
	if mv == nil || mv.Key == nil || mv.Value == nil || mv.Start == nil {
		return "", false
	}
	k, v, colon := mv.Key.GetToken(), mv.Value.GetToken(), mv.Start
	if k == nil || v == nil || !plainScalar(mv.Key) || !plainScalar(mv.Value) {
		return "", false
	}
	kp, vp, cp := k.Position, v.Position, colon.Position
	if kp == nil || vp == nil || cp == nil || kp.Line != cp.Line || vp.Line != cp.Line ||
		kp.Column+len(k.Value) != cp.Column || cp.Column+1 != vp.Column {
		return "", false
	}
	return k.Value + ":" + v.Value, true
}

func plainScalar(n ast.Node) bool {
	switch n.(type) {
	case *ast.StringNode, *ast.IntegerNode:
		t := n.GetToken().Type
		return t != token.DoubleQuoteType && t != token.SingleQuoteType
	}
	return false
}

// describe names what a node holds, for "expected X, got Y" errors.
func describe(n ast.Node) string {
	switch n := n.(type) {
	case nil:
		return "nothing"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		return strconv.Quote(n.Value)
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value
	case *ast.LiteralNode:
		return "a block of text"
	}
	return "a " + n.Type().String()
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("invalid IPv6 address %q: %s", s, netipReason(err))
	case a.Is4():
		return netip.Addr{}, fmt.Errorf("%s is an IPv4 address; want IPv6", s)
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("invalid IPv6 address %q: zones are not allowed", s)
	}
	return a, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("invalid IPv6 prefix %q: %s", s, netipReason(err))
	case p.Addr().Is4():
		return netip.Prefix{}, fmt.Errorf("%s is an IPv4 prefix; want IPv6", s)
	case p.Masked() != p:
		return netip.Prefix{}, fmt.Errorf("invalid IPv6 prefix %q: bits set after the first %d (did you mean %s?)", s, p.Bits(), p.Masked())
	}
	return p, nil
}

// netipReason strips net/netip's `ParseAddr("…"): ` prefix from an error.
func netipReason(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "): "); ok {
		return after
	}
	return msg
}
