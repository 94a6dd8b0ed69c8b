package main

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"labelstation/drivers/printer"
)

// The printer listener finds labels and status queries even when a command is split across
// TCP reads, and times a label from its first read to the read holding ^XZ.
func TestPrinterListenerSplitCommands(t *testing.T) {
	pl, err := listenPrinter()
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	c, err := net.Dial("tcp", pl.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	write := func(s string) {
		t.Helper()
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// A status query split "~H" + "S" is answered.
	write("~H")
	time.Sleep(20 * time.Millisecond) // separate reads on the listener's side; not a wait for a result
	write("S")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var reply strings.Builder
	for range 3 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("~HS reply incomplete (%q): %v", reply.String(), err)
		}
		reply.WriteString(line)
	}
	st, err := printer.ParseZPLHostStatus([]byte(reply.String()))
	if err != nil || st.Fault() != nil {
		t.Fatalf("~HS reply %q: %+v, %v; want a ready printer", reply.String(), st, err)
	}
	write("^XA^FDone^FS^X")
	time.Sleep(20 * time.Millisecond)
	write("Z^XA^FDtwo^FS^XZ")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	labels, err := pl.wait(ctx, 10*time.Second, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != 2 {
		t.Fatalf("%d labels, want 2", len(labels))
	}
	if !labels[0].last.After(labels[0].first) {
		t.Errorf("label 1 ended %v, not after its start %v: its ^XZ came in a later read", labels[0].last, labels[0].first)
	}
	if labels[1].first.Before(labels[0].last) {
		t.Errorf("label 2 started before label 1 ended")
	}
}

// A short run of the whole benchmark: enrollment, taps that print and a job of labels, with
// every label accounted for (run returns an error if a label or a job state is missing).
func TestBenchE2EShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts devcloud and a station; skipped with -short")
	}
	if err := run(3, 20, 0, t.TempDir(), "../../examples/devcloud-seed.json"); err != nil {
		t.Fatal(err)
	}
}
