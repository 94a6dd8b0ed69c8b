package label

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

type xmlReader struct {
	dec       *xml.Decoder
	recordTag string
	depth     int // current element depth; the root is 1
	n         int
	done      bool
}

// newXMLReader reads repeated record elements. Attributes and child elements
// of a record become fields: <order id="7"><ship><to>Ann</to></ship></order>
// gives id=7 and ship::to=Ann.
func newXMLReader(r io.Reader, opt ReadOptions) (*xmlReader, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	return &xmlReader{dec: d, recordTag: opt.RecordElement}, nil
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
			return nil, recErr(FormatXML, x.n+1, err)
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
				return nil, recErr(FormatXML, x.n, err)
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
