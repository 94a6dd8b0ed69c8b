package printer_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"labelstation/drivers/printer"
	"labelstation/drivers/printer/simprinter"
	"labelstation/drivers/serialport"
)

func TestTCPSendAndStatusEveryFault(t *testing.T) {
	srv, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := t.Context()
	tr, err := printer.Dial(ctx, srv.URL(), printer.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := printer.New(tr, printer.ZPL)
	defer p.Close()

	labels := []string{"^XA^FO10,10^FDone^FS^XZ", "^XA^FO10,10^FDtwo^FS^XZ"}
	// Split mid-command: the printer must reassemble.
	all := strings.Join(labels, "\r\n")
	for _, part := range []string{all[:5], all[5:30], all[30:]} {
		if err := p.Send(ctx, []byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := srv.WaitLabels(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != strings.Join(labels, "|") {
		t.Fatalf("labels %q, want %q", got, labels)
	}

	faults := []printer.Status{
		{}, {PaperOut: true}, {HeadOpen: true}, {RibbonOut: true}, {Paused: true},
		{BufferFull: true}, {OverTemp: true}, {UnderTemp: true}, {CorruptRAM: true},
		{PaperOut: true, HeadOpen: true, LabelsRemaining: 3, FormatsInBuffer: 1},
	}
	for _, want := range faults {
		srv.SetStatus(want)
		st, err := p.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st != want {
			t.Errorf("status %+v, want %+v", st, want)
		}
		if (st.Fault() == nil) != (len(want.Faults()) == 0) {
			t.Errorf("%+v: Fault() = %v", st, st.Fault())
		}
	}
}

// fakeDevice answers on the master side of a pty: reply is called with all
// bytes received so far and returns what to send back and how many input
// bytes it consumed.
func fakeDevice(t *testing.T, reply func(in []byte) (out []byte, used int)) (slave string) {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		master.Close()
		tty.Close()
		<-done
	})
	go func() {
		defer close(done)
		var in []byte
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			if err != nil {
				return
			}
			in = append(in, buf[:n]...)
			for len(in) > 0 {
				out, used := reply(in)
				if used == 0 {
					break
				}
				in = in[used:]
				if _, err := master.Write(out); err != nil {
					return
				}
			}
		}
	}()
	return tty.Name()
}

// tsplDevice is a TSPL printer on a pty that answers each <ESC>!? with the next byte on status.
func tsplDevice(t *testing.T, status <-chan byte) string {
	return fakeDevice(t, func(in []byte) ([]byte, int) {
		i := bytes.Index(in, []byte("\x1b!?"))
		if i < 0 {
			return nil, 0
		}
		return []byte{<-status}, i + 3
	})
}

func TestSerialTSPLEveryBitOverPty(t *testing.T) {
	status := make(chan byte, 1)
	slave := tsplDevice(t, status)
	ctx := t.Context()
	tr, err := printer.Dial(ctx, "serial://"+slave+"?baud=19200&parity=even&flow=rtscts", printer.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := printer.New(tr, printer.TSPL)
	defer p.Close()
	for bit := range 8 {
		status <- 1 << bit
		st, err := p.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := printer.ParseTSPLStatus(1 << bit); st != want {
			t.Errorf("bit %d: %+v, want %+v", bit, st, want)
		}
		if bit != 5 && st.Fault() == nil {
			t.Errorf("bit %d: no fault", bit)
		}
	}
}

func TestSerialESCPOSOverPty(t *testing.T) {
	// replies[n-1] answers DLE EOT n.
	replies := make(chan [4]byte, 1)
	var cur [4]byte
	slave := fakeDevice(t, func(in []byte) ([]byte, int) {
		if len(in) < 3 {
			return nil, 0
		}
		if in[0] != 0x10 || in[1] != 0x04 || in[2] < 1 || in[2] > 4 {
			t.Errorf("unexpected bytes % x", in)
			return nil, len(in)
		}
		if in[2] == 1 {
			cur = <-replies
		}
		return []byte{cur[in[2]-1]}, 3
	})
	ctx := t.Context()
	tr, err := printer.Dial(ctx, "serial://"+slave+"?baud=9600&flow=xonxoff", printer.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := printer.New(tr, printer.ESCPOS)
	defer p.Close()
	tests := []struct {
		r    [4]byte
		want printer.Status
	}{
		{[4]byte{0x12, 0x12, 0x12, 0x12}, printer.Status{}},
		{[4]byte{0x1a, 0x16, 0x12, 0x12}, printer.Status{CoverOpen: true}},
		{[4]byte{0x1a, 0x32, 0x12, 0x72}, printer.Status{PaperOut: true}},
		{[4]byte{0x12, 0x12, 0x1a, 0x12}, printer.Status{CutterError: true}},
		{[4]byte{0x12, 0x12, 0x12, 0x1e}, printer.Status{PaperNearEnd: true}},
	}
	for _, tt := range tests {
		replies <- tt.r
		st, err := p.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st != tt.want {
			t.Errorf("% x: %+v, want %+v", tt.r, st, tt.want)
		}
	}
}

func TestSerialSendOverPty(t *testing.T) {
	got := make(chan string, 1)
	slave := fakeDevice(t, func(in []byte) ([]byte, int) {
		if !bytes.HasSuffix(in, []byte("PRINT 1\r\n")) {
			return nil, 0
		}
		got <- string(in)
		return nil, len(in)
	})
	ctx := t.Context()
	tr, err := printer.Dial(ctx, "serial://"+slave+"?baud=115200", printer.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := printer.New(tr, printer.TSPL)
	defer p.Close()
	label := "SIZE 50 mm,30 mm\r\nCLS\r\nTEXT 10,10,\"3\",0,1,1,\"hi\"\r\nPRINT 1\r\n"
	if err := p.Send(ctx, []byte(label)); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != label {
			t.Fatalf("printer got %q", s)
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

func TestStatusNoReply(t *testing.T) {
	asked := make(chan struct{}, 2)
	slave := fakeDevice(t, func(in []byte) ([]byte, int) {
		asked <- struct{}{}
		return nil, len(in) // a Zebra with media out stays silent
	})
	tr, err := printer.Dial(t.Context(), "serial://"+slave, printer.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := printer.New(tr, printer.ZPL)
	defer p.Close()
	p.StatusTimeout = 50 * time.Millisecond
	if _, err := p.Status(t.Context()); !errors.Is(err, printer.ErrNoStatus) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want ErrNoStatus wrapping a deadline", err)
	}
	<-asked

	// Cancelling ctx releases a pending status read at once.
	p.StatusTimeout = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-asked
		cancel()
	}()
	if _, err := p.Status(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestDialErrors(t *testing.T) {
	tests := []struct{ url, want string }{
		{"lpt://x", "scheme \"lpt\""},
		{"tcp:///path", "want tcp://host:port"},
		{"usb://host/dev/usb/lp0", "want usb:///dev/usb/lpN"},
		{"serial:///dev/null?baud=12", "baud 12 not supported"},
		{"serial:///dev/null?flow=dtr", "flow \"dtr\""},
		{"serial:///dev/null?speed=9600", "unknown parameter \"speed\""},
		{"usb:///nonexistent/lp0", "no such file"},
	}
	for _, tt := range tests {
		_, err := printer.Dial(t.Context(), tt.url, printer.DialOptions{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.url, err, tt.want)
		}
	}
	if _, err := printer.Dial(t.Context(), "lpt://x", printer.DialOptions{}); !errors.Is(err, printer.ErrURL) {
		t.Errorf("want ErrURL, got %v", err)
	}
}

func TestStatusUnsupportedLanguage(t *testing.T) {
	p := printer.New(nil, "pcl")
	if _, err := p.Status(t.Context()); !errors.Is(err, printer.ErrUnsupported) {
		t.Fatalf("got %v", err)
	}
}

// The usb:// transport is a plain character device opened read-write, as
// usblp's /dev/usb/lpN is; a pty slave stands in for it here.
func TestUSBTransportOverPty(t *testing.T) {
	status := make(chan byte, 1)
	slave := tsplDevice(t, status)
	// usblp has no line discipline; make the pty raw likewise, or the
	// status byte 04 would read as end-of-file (VEOF).
	raw, err := serialport.Open(slave, serialport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	raw.Close()
	tr, err := printer.Dial(t.Context(), "usb://"+slave, printer.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.String() != "usb://"+slave {
		t.Errorf("String() = %q", tr)
	}
	p := printer.New(tr, printer.TSPL)
	defer p.Close()
	status <- 0x04 // out of paper
	st, err := p.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Fault(); err == nil || err.Error() != "printer: fault: paper out" {
		t.Fatalf("fault %v", err)
	}
}
