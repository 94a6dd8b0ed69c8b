package label

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/transform"
)

type xmlReader struct {
	track     *utf8Tracker
	dec       *xml.Decoder
	recordTag string
	depth     int // current element depth; the root is 1
	n         int
	done      bool
}

// newXMLReader reads repeated record elements. Attributes and child elements
// of a record become fields: <order id="7"><ship><to>Ann</to></ship></order>
// gives id=7 and ship::to=Ann.
// The encoding declaration is honoured unless the bytes were transcoded
// already (a declared charset or a UTF-16 byte order mark).
func newXMLReader(r io.Reader, track *utf8Tracker, transcoded bool, opt ReadOptions) (*xmlReader, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	d.CharsetReader = func(name string, in io.Reader) (io.Reader, error) {
		if transcoded {
			return in, nil
		}
		enc, err := lookupCharset(name)
		if err != nil {
			return nil, err
		}
		if enc == nil {
			return in, nil
		}
		return transform.NewReader(in, enc.NewDecoder()), nil
	}
	return &xmlReader{dec: d, recordTag: opt.RecordElement, track: track}, nil
}

// err wraps a record error, adding the offset of an invalid UTF-8 byte.
func (x *xmlReader) err(n int, err error) error {
	if msg := x.track.invalid(); msg != "" && strings.Contains(err.Error(), "invalid UTF-8") {
		err = fmt.Errorf("%v: %s", err, msg)
	}
	return recErr(FormatXML, n, err)
}

func (x *xmlReader) Next() (Record, error) {
	if x.done {
		return nil, io.EOF
	}
	for {
		tok, err := x.dec.Token()
		if err == io.EOF {
			x.done = true
			if x.depth != 0 {
				return nil, recErr(FormatXML, x.n+1, io.ErrUnexpectedEOF)
			}
			return nil, io.EOF
		}
		if err != nil {
			x.done = true
			return nil, x.err(x.n+1, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			x.depth++
			isRecord := x.depth == 2 && x.recordTag == ""
			if x.recordTag != "" && t.Name.Local == x.recordTag {
				isRecord = true
			}
			if !isRecord {
				continue
			}
			x.n++
			rec := Record{}
			if err := x.readElement(rec, "", t); err != nil {
				x.done = true
				return nil, x.err(x.n, err)
			}
			x.depth--
			return rec, nil
		case xml.EndElement:
			x.depth--
		case xml.CharData:
			if x.depth == 0 && len(strings.TrimSpace(string(t))) > 0 {
				x.done = true
				return nil, recErr(FormatXML, x.n+1, errors.New("text outside the root element"))
			}
		}
	}
}

// maxXMLDepth bounds nesting inside a record; real data nests a few levels.
const maxXMLDepth = 64

// readElement consumes start's content up to its end element.
func (x *xmlReader) readElement(rec Record, prefix string, start xml.StartElement) error {
	if strings.Count(prefix, "::") >= maxXMLDepth {
		return fmt.Errorf("elements nested deeper than %d levels", maxXMLDepth)
	}
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "::" + k
	}
	for _, a := range start.Attr {
		if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
			continue
		}
		if err := setField(rec, join(a.Name.Local), a.Value); err != nil {
			return err
		}
	}
	var text strings.Builder
	children := false
	for {
		tok, err := x.dec.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if prefix != "" {
				return fmt.Errorf("field %q: %w", prefix, err)
			}
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			children = true
			if err := x.readElement(rec, join(t.Name.Local), t); err != nil {
				return err
			}
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			if !children && prefix != "" && len(start.Attr) == 0 {
				return setField(rec, prefix, text.String())
			}
			if !children && prefix != "" && text.Len() > 0 {
				return setField(rec, prefix, text.String())
			}
			if children && strings.TrimSpace(text.String()) != "" {
				return fmt.Errorf("element %q mixes text and child elements", start.Name.Local)
			}
			return nil
		}
	}
}
