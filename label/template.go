package label

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrMissingField is returned (wrapped) when a template addresses a field the
// record does not have and the placeholder gives no default.
var ErrMissingField = errors.New("missing field")

// template is a compiled text: literal runs and field placeholders.
//
// Syntax (docs/layouts.md): {a::b} inserts field "a::b"; {a::b|text} inserts
// "text" when the field is absent; {{ and }} are a literal brace. Any other
// brace is an error, so a typo never prints silently.
type template struct {
	parts []tmplPart
	// static is true when there are no placeholders; lit of parts[0] is the text.
	static bool
}

type tmplPart struct {
	lit    string
	field  string // "" for a literal part
	def    string
	hasDef bool
}

// parseTemplate compiles s. Errors are relative to s and carry the byte offset.
func parseTemplate(s string) (template, error) {
	var t template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, tmplPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '{':
			if i+1 < len(s) && s[i+1] == '{' {
				lit.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return t, fmt.Errorf("unclosed '{' at offset %d (write {{ for a literal brace)", i)
			}
			body := s[i+1 : i+1+end]
			if j := strings.IndexByte(body, '{'); j >= 0 {
				return t, fmt.Errorf("'{' inside placeholder at offset %d", i+1+j)
			}
			name, def, hasDef := strings.Cut(body, "|")
			if err := checkFieldName(name); err != nil {
				return t, fmt.Errorf("placeholder at offset %d: %w", i, err)
			}
			flush()
			t.parts = append(t.parts, tmplPart{field: name, def: def, hasDef: hasDef})
			i += end + 1
		case '}':
			if i+1 < len(s) && s[i+1] == '}' {
				lit.WriteByte('}')
				i++
				continue
			}
			return t, fmt.Errorf("unmatched '}' at offset %d (write }} for a literal brace)", i)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	t.static = true
	for _, p := range t.parts {
		if p.field != "" {
			t.static = false
		}
	}
	return t, nil
}

// checkFieldName validates a field path: segments separated by "::", none
// empty, no control characters, no stray ':'.
func checkFieldName(name string) error {
	if name == "" {
		return errors.New("empty field name")
	}
	for _, seg := range strings.Split(name, "::") {
		if strings.TrimSpace(seg) == "" {
			return fmt.Errorf("field %q has an empty path segment", name)
		}
		if strings.ContainsRune(seg, ':') {
			return fmt.Errorf("field %q: use '::' to separate path segments", name)
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return fmt.Errorf("field %q contains a control character", name)
			}
		}
	}
	return nil
}

// fields returns the field names the template reads.
func (t template) fields() []string {
	var out []string
	for _, p := range t.parts {
		if p.field != "" {
			out = append(out, p.field)
		}
	}
	return out
}

// expand appends the template's text for rec to dst, unescaped: each
// renderer escapes the whole value for its printer language.
func (t template) expand(dst []byte, rec Record) ([]byte, error) {
	for _, p := range t.parts {
		if p.field == "" {
			dst = append(dst, p.lit...)
			continue
		}
		v, ok := rec[p.field]
		if !ok {
			if !p.hasDef {
				return dst, fmt.Errorf("%w: %q (write {%s|} for an empty default)", ErrMissingField, p.field, p.field)
			}
			v = p.def
		}
		if !utf8.ValidString(v) {
			return dst, fmt.Errorf("field %q is not valid UTF-8 (decode the data with its charset)", p.field)
		}
		dst = append(dst, v...)
	}
	return dst, nil
}

// string expands the template without escaping.
func (t template) string(rec Record) (string, error) {
	if t.static {
		if len(t.parts) == 0 {
			return "", nil
		}
		return t.parts[0].lit, nil
	}
	b, err := t.expand(nil, rec)
	return string(b), err
}
