package label_test

import (
	"fmt"
	"io"
	"strings"

	"labelstation/label"
)

// A layout, a CSV job and its ZPL: one ^XA..^XZ block per label.
func Example() {
	l, err := label.ParseLayout([]byte(`{"version":1,"id":"bin","width_mm":50,"height_mm":25,
	  "elements":[
	    {"type":"text","x":2,"y":2,"text":"Bin {bin}","font_pt":12},
	    {"type":"barcode","symbology":"code128","x":2,"y":10,"data":"{bin}","height":10}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	rr, err := label.NewRecordReader(label.FormatCSV, strings.NewReader("bin;copies\nA-01;2\n"), label.ReadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		rec, err := rr.Next()
		if err == io.EOF {
			break
		}
		n, _ := l.Copies(rec)
		out, err := label.Render(l, rec, label.Target{Lang: label.LangZPL, DPI: 203})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%d copies of:\n%s", n, out)
	}
	// Output:
	// 2 copies of:
	// ^XA
	// ^CI28
	// ^PW400
	// ^LL200
	// ^LH0,0
	// ^PON
	// ^FO16,16^A0N,34,34^FDBin A-01^FS
	// ^FO16,80^BY2,3,80^BCN,80,N,N,N,A^FDA-01^FS
	// ^XZ
}

// Bad input names the place and the reason.
func ExampleParseLayout_error() {
	_, err := label.ParseLayout([]byte(`{"version":1,"id":"x","width_mm":50,"height_mm":25,
	  "elements":[{"type":"text","x":2,"y":2,"text":"ok"},{"type":"box","x":45,"y":2,"width":10,"height":5}]}`))
	fmt.Println(err)
	// Output:
	// label: invalid layout: elements[1] (box): box reaches (55, 7) mm, outside the 50x25 mm label
}
