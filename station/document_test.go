package station

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"labelstation/protocol"
)

const docZPL = "^XA^FO50,50^FDone^FS^XZ\r\n^XA^FO50,50^FDtwo^FS^XZ\n"

// A ZPL document job reaches a ZPL printer byte for byte, one label per ^XA…^XZ block; a TSPL
// printer refuses it before anything is sent.
func TestWorkerPrintsDocument(t *testing.T) {
	fp := &fakePrinter{}
	s, j := workerStation(t, fp)
	go func() {
		for range s.events {
		}
	}()
	e, _, err := j.Claim(protocol.Job{V: 1, ID: "doc-1", Title: "carrier", Format: "zpl", Labels: 2, Data: []byte(docZPL)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.printJob(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if len(fp.labels) != 2 || string(bytes.Join(fp.labels, nil)) != docZPL {
		t.Fatalf("printer got %q", fp.labels)
	}
	if e, _ := j.Get("doc-1"); e.Printed != 2 {
		t.Errorf("journal says %d printed", e.Printed)
	}

	fp2 := &fakePrinter{}
	s2, j2 := workerStation(t, fp2)
	go func() {
		for range s2.events {
		}
	}()
	s2.cfg.Printer.Lang = "tspl"
	e, _, _ = j2.Claim(protocol.Job{V: 1, ID: "doc-2", Title: "carrier", Format: "zpl", Labels: 2, Data: []byte(docZPL)})
	err = s2.printJob(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "a zpl document cannot print on a tspl printer") || fp2.count() != 0 {
		t.Errorf("zpl on tspl: %v, %d labels sent", err, fp2.count())
	}
}

// A record the station cannot print fails the job before its first label is sent.
func TestWorkerChecksEveryRecordFirst(t *testing.T) {
	fp := &fakePrinter{}
	s, j := workerStation(t, fp)
	go func() {
		for range s.events {
		}
	}()
	job := testJob(t)
	job.Data = []byte("name,street,zip,city,tracking\nAda Lovelace,1 Sq,1,London,TRK1\nBruce 李小龙,2 Way,2,HK,TRK2\n")
	e, _, err := j.Claim(job)
	if err != nil {
		t.Fatal(err)
	}
	err = s.printJob(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "record 2: ") || !strings.Contains(err.Error(), `'李' (U+674E) in field "name"`) || fp.count() != 0 {
		t.Errorf("err %v, %d labels sent", err, fp.count())
	}
}
