package label

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// ErrCharset is wrapped when a declared charset is unknown.
var ErrCharset = errors.New("label: unknown charset")

// ParseDataFormat is ParseFormat that also returns the charset parameter of
// a media type ("text/csv; charset=windows-1252"), "" when none is given.
func ParseDataFormat(s string) (Format, string, error) {
	f, err := ParseFormat(s)
	if err != nil {
		return "", "", err
	}
	cs := ""
	if _, params, err := mime.ParseMediaType(strings.TrimSpace(s)); err == nil {
		cs = params["charset"]
	}
	if cs != "" {
		if _, err := lookupCharset(cs); err != nil {
			return "", "", err
		}
	}
	return f, cs, nil
}

// lookupCharset resolves an IANA or WHATWG charset name; nil means UTF-8,
// which the readers take as it is. IANA names win, so "iso-8859-1" is
// ISO 8859-1 and not the Windows-1252 a browser would substitute.
func lookupCharset(name string) (encoding.Encoding, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" || n == "utf-8" || n == "utf8" || n == "us-ascii" || n == "ascii" {
		return nil, nil
	}
	if e, err := ianaindex.IANA.Encoding(n); err == nil && e != nil {
		return e, nil
	}
	if e, err := htmlindex.Get(n); err == nil && e != nil {
		if e == unicode.UTF8 {
			return nil, nil
		}
		return e, nil
	}
	return nil, fmt.Errorf("%w %q (want utf-8, iso-8859-1..16, windows-1250..1258, shift_jis, ...)", ErrCharset, name)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// decodeInput turns r into UTF-8. A declared charset is decoded with
// golang.org/x/text; without one the data must be UTF-8 (a BOM is dropped,
// a UTF-16 BOM selects UTF-16) and the returned tracker remembers where the
// first invalid byte was, so a reader can name the record, the column and
// the offset instead of printing replacement characters. XML without a
// declared charset is left to its own encoding declaration.
// transcoded reports that the bytes were converted, so an XML encoding
// declaration no longer describes them.
func decodeInput(r io.Reader, f Format, charset string) (out io.Reader, t *utf8Tracker, transcoded bool, err error) {
	enc, err := lookupCharset(charset)
	if err != nil {
		return nil, nil, false, err
	}
	if f == FormatXLSX {
		return r, nil, false, nil // a workbook carries its own encoding
	}
	br := bufio.NewReaderSize(r, 4096)
	head, _ := br.Peek(3)
	if enc != nil {
		if bytes.HasPrefix(head, utf8BOM) {
			return nil, nil, false, fmt.Errorf("%w: the data starts with a UTF-8 byte order mark but is declared as %s", ErrMalformed, charset)
		}
		return transform.NewReader(br, enc.NewDecoder()), nil, true, nil
	}
	switch {
	case bytes.HasPrefix(head, utf8BOM):
		br.Discard(3)
		t := &utf8Tracker{r: br, off: 3, bad: -1}
		return t, t, false, nil
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return transform.NewReader(br, unicode.BOMOverride(unicode.UTF8.NewDecoder())), nil, true, nil
	}
	t = &utf8Tracker{r: br, bad: -1}
	return t, t, false, nil
}

// utf8Tracker passes bytes through and records the offset of the first
// byte that is not part of valid UTF-8. It never fails a read: the parser
// above knows the record and column, the tracker knows the offset.
type utf8Tracker struct {
	r       io.Reader
	off     int64 // offset of pend[0] in the data
	pend    []byte
	bad     int64
	badByte byte
}

func (t *utf8Tracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if t.bad >= 0 {
		return n, err
	}
	b := p[:n]
	if len(t.pend) > 0 {
		b = append(t.pend, b...)
	}
	i := 0
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		if !utf8.FullRune(b[i:]) && err == nil {
			break // a sequence cut by the read; finish it with the next one
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			t.bad, t.badByte = t.off+int64(i), b[i]
			return n, err
		}
		i += size
	}
	t.off += int64(i)
	t.pend = append(t.pend[:0], b[i:]...)
	return n, err
}

// invalid describes the first invalid byte, or "" when none was seen.
func (t *utf8Tracker) invalid() string {
	if t == nil || t.bad < 0 {
		return ""
	}
	return fmt.Sprintf("invalid UTF-8: byte 0x%02X at offset %d of the data (declare its charset, e.g. charset=windows-1252)", t.badByte, t.bad)
}

// xmlEncodingRE finds the encoding of an XML declaration.
var xmlEncodingRE = regexp.MustCompile(`^(\s*<\?xml[^>]*?\sencoding\s*=\s*["'])([A-Za-z0-9._:-]+)(["'])`)

// NormalizeUTF8 returns data as UTF-8 without a byte order mark, decoded
// from charset ("" for UTF-8) or, for XML, from its encoding declaration,
// which is rewritten to say UTF-8. Invalid UTF-8 is refused with its
// offset. The job service stores jobs this way, so a station never has to
// know the charset a submitter used. XLSX is returned unchanged.
func NormalizeUTF8(f Format, data []byte, charset string) ([]byte, error) {
	if f == FormatXLSX {
		return data, nil
	}
	if f == FormatXML {
		body := bytes.TrimPrefix(data, utf8BOM)
		m := xmlEncodingRE.FindSubmatchIndex(body[:min(len(body), 512)])
		if charset == "" && m != nil {
			charset = string(body[m[4]:m[5]])
		}
	}
	enc, err := lookupCharset(charset)
	if err != nil {
		return nil, err
	}
	var out []byte
	if enc != nil {
		if bytes.HasPrefix(data, utf8BOM) && f != FormatXML {
			return nil, fmt.Errorf("%w: the data starts with a UTF-8 byte order mark but is declared as %s", ErrMalformed, charset)
		}
		out, err = enc.NewDecoder().Bytes(data)
		if err != nil {
			return nil, fmt.Errorf("%w: decoding %s: %v", ErrMalformed, charset, err)
		}
	} else {
		r, t, _, err := decodeInput(bytes.NewReader(data), FormatCSV, "")
		if err != nil {
			return nil, err
		}
		if out, err = io.ReadAll(r); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if msg := t.invalid(); msg != "" {
			return nil, fmt.Errorf("%w: %s", ErrMalformed, msg)
		}
	}
	if f == FormatXML {
		if m := xmlEncodingRE.FindSubmatchIndex(out[:min(len(out), 512)]); m != nil {
			out = append(append(append([]byte{}, out[:m[4]]...), "UTF-8"...), out[m[5]:]...)
		}
	}
	return out, nil
}
