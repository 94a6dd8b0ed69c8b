package label

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

type jsonReader struct {
	track *utf8Tracker
	skip  int64 // bytes before the decoder's input: a BOM, white space
	dec   *json.Decoder
	array bool
	done  bool
	n     int
}

// newJSONReader reads one object (one label) or an array of objects (many),
// decoding one element at a time so a large array streams.
func newJSONReader(r io.Reader, track *utf8Tracker) (*jsonReader, error) {
	br := bufio.NewReader(r)
	var first byte
	var skip int64
	if track != nil {
		skip = track.off // the BOM
	}
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: json: no data", ErrMalformed)
		}
		if err != nil {
			return nil, recErr(FormatJSON, 0, err)
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			skip++
			continue
		}
		first = c
		br.UnreadByte()
		break
	}
	j := &jsonReader{dec: json.NewDecoder(br), track: track, skip: skip}
	j.dec.UseNumber()
	switch first {
	case '[':
		j.array = true
		if _, err := j.dec.Token(); err != nil {
			return nil, recErr(FormatJSON, 0, err)
		}
	case '{':
	default:
		return nil, fmt.Errorf("%w: json: want an object or an array of objects, got %q", ErrMalformed, first)
	}
	return j, nil
}

func (j *jsonReader) Next() (Record, error) {
	if j.done {
		return nil, io.EOF
	}
	if j.array && !j.dec.More() {
		j.done = true
		if _, err := j.dec.Token(); err != nil {
			return nil, recErr(FormatJSON, j.n+1, err)
		}
		if err := j.expectEOF(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	j.n++
	var v any
	if err := j.dec.Decode(&v); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		j.done = true
		return nil, recErr(FormatJSON, j.n, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, recErr(FormatJSON, j.n, fmt.Errorf("want an object, got %s", jsonKind(v)))
	}
	rec := Record{}
	if err := flattenJSON(rec, "", obj); err != nil {
		return nil, recErr(FormatJSON, j.n, err)
	}
	// encoding/json turns invalid UTF-8 into U+FFFD; refuse it instead.
	if t := j.track; t != nil && t.bad >= 0 && t.bad < j.skip+j.dec.InputOffset() {
		j.done = true
		field := ""
		for _, k := range slices.Sorted(maps.Keys(rec)) {
			if strings.ContainsRune(rec[k], utf8.RuneError) || strings.ContainsRune(k, utf8.RuneError) {
				field = fmt.Sprintf(", field %q", k)
				break
			}
		}
		return nil, fmt.Errorf("%w: json record %d%s: %s", ErrMalformed, j.n, field, t.invalid())
	}
	if !j.array {
		j.done = true
		if err := j.expectEOF(); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

func (j *jsonReader) expectEOF() error {
	if _, err := j.dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("trailing data after the JSON document")
		}
		return recErr(FormatJSON, j.n, err)
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	}
	return "an object"
}

// flattenJSON stores scalars of v under their "::"-joined path; array
// elements are addressed by index ("items::0::sku"); null is absent.
func flattenJSON(rec Record, prefix string, v any) error {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "::" + k
	}
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if k == "" {
				return fmt.Errorf("empty key under %q", prefix)
			}
			if err := flattenJSON(rec, join(k), c); err != nil {
				return err
			}
		}
	case []any:
		for i, c := range t {
			if err := flattenJSON(rec, join(strconv.Itoa(i)), c); err != nil {
				return err
			}
		}
	case nil:
	case string:
		return setField(rec, prefix, t)
	case json.Number:
		return setField(rec, prefix, t.String())
	case bool:
		return setField(rec, prefix, strconv.FormatBool(t))
	}
	return nil
}
