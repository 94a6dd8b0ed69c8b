package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// decodeStrict decodes one JSON document into v (a pointer to a struct that already holds the
// defaults) by walking the JSON tokens against v's type. encoding/json alone cannot name the
// path of an unknown field or of a type error, nor reject duplicate keys; this walk does all
// three. Field names match json tags exactly (encoding/json would also accept "DPI" for "dpi",
// which makes typos silently win).
func decodeStrict(data []byte, v any) error {
	d := &decoder{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	d.dec.UseNumber()
	if err := d.value(reflect.ValueOf(v).Elem(), ""); err != nil {
		return err
	}
	end := d.dec.InputOffset()
	if _, err := d.dec.Token(); err != io.EOF {
		rest := d.data[end:]
		end += int64(len(rest) - len(bytes.TrimLeft(rest, " \t\r\n")))
		return &Error{Msg: fmt.Sprintf("trailing data after the document at %s", d.position(end)), Kind: ErrSyntax}
	}
	return nil
}

type decoder struct {
	data []byte
	dec  *json.Decoder
}

// token reads the next token, turning decoder errors into a positioned ErrSyntax.
func (d *decoder) token() (json.Token, error) {
	tok, err := d.dec.Token()
	if err == nil {
		return tok, nil
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, &Error{Msg: "unexpected end of document", Kind: ErrSyntax}
	}
	off := d.dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	return nil, &Error{Msg: fmt.Sprintf("syntax error at %s: %v", d.position(off), err), Kind: ErrSyntax}
}

// position renders a byte offset as "line L, column C" (1-based), which an admin editing the
// file by hand can find.
func (d *decoder) position(off int64) string {
	if off > int64(len(d.data)) {
		off = int64(len(d.data))
	}
	before := d.data[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

func (d *decoder) value(v reflect.Value, path string) error {
	tok, err := d.token()
	if err != nil {
		return err
	}
	if tok == nil {
		return typeError(path, v.Type(), tok)
	}
	switch v.Kind() {
	case reflect.Pointer:
		// Only the fleet document uses pointers, to tell "not set" from zero; a value present
		// in the document allocates.
		elem := reflect.New(v.Type().Elem())
		if err := d.after(tok, elem.Elem(), path); err != nil {
			return err
		}
		v.Set(elem)
		return nil
	default:
		return d.after(tok, v, path)
	}
}

// after decodes the value that starts with tok into v.
func (d *decoder) after(tok json.Token, v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return typeError(path, v.Type(), tok)
		}
		return d.object(v, path)
	case reflect.Slice:
		if tok != json.Delim('[') {
			return typeError(path, v.Type(), tok)
		}
		// A list in the document replaces the default list, it does not extend it.
		s := reflect.MakeSlice(v.Type(), 0, 4)
		for i := 0; d.dec.More(); i++ {
			s = reflect.Append(s, reflect.Zero(v.Type().Elem()))
			if err := d.value(s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		if _, err := d.token(); err != nil { // ']'
			return err
		}
		v.Set(s)
		return nil
	case reflect.Map:
		// Maps name things the user chooses (buttons, buses): any key, values checked by type.
		if tok != json.Delim('{') {
			return typeError(path, v.Type(), tok)
		}
		m := reflect.MakeMap(v.Type())
		for d.dec.More() {
			k, err := d.token()
			if err != nil {
				return err
			}
			key := k.(string)
			p := join(path, key)
			if m.MapIndex(reflect.ValueOf(key)).IsValid() {
				return &Error{Path: p, Msg: "duplicate field", Kind: ErrInvalid}
			}
			elem := reflect.New(v.Type().Elem()).Elem()
			if err := d.value(elem, p); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(key), elem)
		}
		if _, err := d.token(); err != nil { // '}'
			return err
		}
		v.Set(m)
		return nil
	case reflect.String:
		s, ok := tok.(string)
		if !ok {
			return typeError(path, v.Type(), tok)
		}
		v.SetString(s)
		return nil
	case reflect.Bool:
		b, ok := tok.(bool)
		if !ok {
			return typeError(path, v.Type(), tok)
		}
		v.SetBool(b)
		return nil
	case reflect.Int:
		n, ok := tok.(json.Number)
		if !ok {
			return typeError(path, v.Type(), tok)
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || v.OverflowInt(i) {
			return &Error{Path: path, Msg: fmt.Sprintf("want an integer, got %s", n), Kind: ErrInvalid}
		}
		v.SetInt(i)
		return nil
	}
	// Only reachable if a field of an unsupported kind is added to the config types; the
	// tests decode every field, so this fails there first.
	return &Error{Path: path, Msg: fmt.Sprintf("unsupported Go type %s", v.Type()), Kind: ErrInvalid}
}

func (d *decoder) object(v reflect.Value, path string) error {
	fields := fieldsOf(v.Type())
	seen := map[string]bool{}
	for d.dec.More() {
		tok, err := d.token()
		if err != nil {
			return err
		}
		key := tok.(string) // the decoder guarantees object keys are strings
		p := join(path, key)
		idx, ok := fields[key]
		if !ok {
			return &Error{Path: p, Msg: "unknown field", Kind: ErrUnknownField}
		}
		if seen[key] {
			return &Error{Path: p, Msg: "duplicate field", Kind: ErrInvalid}
		}
		seen[key] = true
		if err := d.value(v.Field(idx), p); err != nil {
			return err
		}
	}
	_, err := d.token() // '}'
	return err
}

// fieldsOf maps json names to field indexes.
func fieldsOf(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		m[name] = i
	}
	return m
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func typeError(path string, want reflect.Type, got json.Token) error {
	return &Error{Path: path, Msg: fmt.Sprintf("want %s, got %s", kindName(want), tokenName(got)), Kind: ErrInvalid}
}

func kindName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(kindName(t.Elem()), "a "), "an ") + "s"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int:
		return "an integer"
	}
	return t.String()
}

func tokenName(tok json.Token) string {
	switch t := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		return "a list"
	case string:
		return "string " + strconv.Quote(t)
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return "number " + string(t)
	}
	return fmt.Sprint(tok)
}
