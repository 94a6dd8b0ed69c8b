package printer

import (
	"errors"
	"strings"
	"testing"
)

// zplReady is a ~HS reply from a ready printer, laid out per the ZPL II
// Programming Guide "~HS Host Status Return": string 1 aaa=030 (9600 8N1),
// paper out 0, pause 0, length 1218 dots, 0 formats, buffer full 0, diag 0,
// partial 0, 000, corrupt RAM 0, under temp 0, over temp 0; string 2
// mmm=001, unused, head up 0, ribbon out 0, TT 1, mode 2 (tear-off), width
// 6, label waiting 0, 00000000 remaining, 1, 000 graphics; string 3
// password 1234, static RAM 0.
const zplReady = "\x02030,0,0,1218,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0,0,1,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n"

// setZPL returns zplReady with field (1-based) of string str replaced by v.
func setZPL(str, field int, v string) string {
	lines := strings.Split(zplReady, "\x03\r\n")
	body := strings.TrimPrefix(lines[str-1], "\x02")
	f := strings.Split(body, ",")
	f[field-1] = v
	lines[str-1] = "\x02" + strings.Join(f, ",")
	return strings.Join(lines, "\x03\r\n")
}

func TestParseZPLHostStatusEveryFault(t *testing.T) {
	tests := []struct {
		str, field int
		want       Status
		fault      string
	}{
		{1, 2, Status{PaperOut: true}, "paper out"},
		{1, 3, Status{Paused: true}, "paused"},
		{1, 6, Status{BufferFull: true}, "buffer full"},
		{1, 10, Status{CorruptRAM: true}, "configuration lost"},
		{1, 11, Status{UnderTemp: true}, "under temperature"},
		{1, 12, Status{OverTemp: true}, "over temperature"},
		{2, 3, Status{HeadOpen: true}, "head open"},
		{2, 4, Status{RibbonOut: true}, "ribbon out"},
	}
	ready, err := ParseZPLHostStatus([]byte(zplReady))
	if err != nil || ready != (Status{}) || ready.Fault() != nil {
		t.Fatalf("ready: %+v, %v", ready, err)
	}
	for _, tt := range tests {
		got, err := ParseZPLHostStatus([]byte(setZPL(tt.str, tt.field, "1")))
		if err != nil {
			t.Fatalf("string %d field %d: %v", tt.str, tt.field, err)
		}
		if got != tt.want {
			t.Errorf("string %d field %d: got %+v, want %+v", tt.str, tt.field, got, tt.want)
		}
		ferr := got.Fault()
		if !errors.Is(ferr, ErrFault) || ferr.Error() != "printer: fault: "+tt.fault {
			t.Errorf("string %d field %d: Fault() = %v", tt.str, tt.field, ferr)
		}
		// The formatter used by simprinter produces the same flags.
		back, err := ParseZPLHostStatus(FormatZPLHostStatus(got))
		if err != nil || back != got {
			t.Errorf("FormatZPLHostStatus round trip: %+v, %v", back, err)
		}
	}
}

func TestParseZPLHostStatusCounters(t *testing.T) {
	s, err := ParseZPLHostStatus([]byte(setZPL(2, 9, "00000042")))
	if err != nil || s.LabelsRemaining != 42 {
		t.Fatalf("got %+v, %v", s, err)
	}
	s, err = ParseZPLHostStatus([]byte("junk\x03" + setZPL(1, 5, "003")))
	if err != nil || s.FormatsInBuffer != 3 {
		t.Fatalf("after junk: got %+v, %v", s, err)
	}
}

func TestParseZPLHostStatusErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{zplReady[:20], "string 1 has no ETX"},
		{zplReady[:40], "string 2 has no ETX"},
		{"", "0 of 3 strings"},
		{setZPL(1, 2, "x"), "string 1 field 2 (paper out) = \"x\""},
		{setZPL(2, 9, "lots"), "string 2 field 9 (labels remaining)"},
		{strings.Replace(zplReady, ",0,0,1218", ",0,1218", 1), "string 1 has 11 fields, want 12"},
	}
	for _, tt := range tests {
		_, err := ParseZPLHostStatus([]byte(tt.in))
		if !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestParseTSPLStatusEveryBit(t *testing.T) {
	// Bits per TSPL/TSPL2 Programming Manual, <ESC>!?.
	want := []Status{
		{HeadOpen: true}, {PaperJam: true}, {PaperOut: true}, {RibbonOut: true},
		{Paused: true}, {Printing: true}, {CoverOpen: true}, {OverTemp: true},
	}
	for bit, w := range want {
		if got := ParseTSPLStatus(1 << bit); got != w {
			t.Errorf("bit %d: got %+v, want %+v", bit, got, w)
		}
	}
	if s := ParseTSPLStatus(0x20); s.Fault() != nil {
		t.Errorf("printing is not a fault: %v", s.Fault())
	}
	// 0x0D: out of ribbon, out of paper and head opened (manual's table).
	if err := ParseTSPLStatus(0x0d).Fault(); err == nil || err.Error() != "printer: fault: paper out, head open, ribbon out" {
		t.Errorf("0x0d: %v", err)
	}
}

func TestParseESCPOSStatusEveryBit(t *testing.T) {
	ok := [4]byte{0x12, 0x12, 0x12, 0x12} // fixed bits only: ready
	tests := []struct {
		n    int // DLE EOT n
		bits byte
		want Status
	}{
		{1, 0x08, Status{Offline: true}},
		{2, 0x04, Status{CoverOpen: true}},
		{2, 0x20, Status{PaperOut: true}},
		{2, 0x40, Status{Offline: true}},
		{3, 0x08, Status{CutterError: true}},
		{3, 0x20, Status{OtherError: true}},
		{3, 0x40, Status{OtherError: true}},
		{4, 0x0c, Status{PaperNearEnd: true}},
		{4, 0x60, Status{PaperOut: true}},
	}
	s, err := ParseESCPOSStatus(ok)
	if err != nil || s != (Status{}) {
		t.Fatalf("ready: %+v, %v", s, err)
	}
	for _, tt := range tests {
		r := ok
		r[tt.n-1] |= tt.bits
		got, err := ParseESCPOSStatus(r)
		if err != nil || got != tt.want {
			t.Errorf("n=%d bits %#02x: got %+v, %v; want %+v", tt.n, tt.bits, got, err, tt.want)
		}
	}
	// Offline because the cover is open: the cause is reported, not "offline".
	got, _ := ParseESCPOSStatus([4]byte{0x12 | 0x08, 0x12 | 0x04 | 0x40, 0x12, 0x12})
	if got != (Status{CoverOpen: true}) {
		t.Errorf("cover open + offline: %+v", got)
	}
	if _, err := ParseESCPOSStatus([4]byte{0x12, 0x00, 0x12, 0x12}); !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), "DLE EOT 2") {
		t.Errorf("bad fixed bits: %v", err)
	}
}

func BenchmarkParseZPLHostStatus(b *testing.B) {
	reply := []byte(zplReady)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseZPLHostStatus(reply); err != nil {
			b.Fatal(err)
		}
	}
}

// SGD getvar replies, per Zebra "SGD Printer Commands": the value in double
// quotes with no line ending; "?" for a variable the printer does not know.
func TestParseSGDCounter(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  error
	}{
		{`"1234"`, 1234, nil},
		{"\"0\"\r\n", 0, nil},
		{`garbage "77"`, 77, nil},
		{`"?"`, 0, ErrUnsupported},
		{`""`, 0, ErrUnsupported},
		{`"12a"`, 0, ErrStatus},
		{`"-3"`, 0, ErrStatus},
		{`12`, 0, ErrStatus},
		{`"12`, 0, ErrStatus},
	} {
		got, err := ParseSGDCounter([]byte(tt.in))
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("%q: got %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestIdle(t *testing.T) {
	for _, tt := range []struct {
		s    Status
		want bool
	}{
		{Status{}, true},
		{Status{PaperOut: true}, true},
		{Status{FormatsInBuffer: 1}, false},
		{Status{LabelsRemaining: 2}, false},
		{Status{Printing: true}, false},
	} {
		if got := tt.s.Idle(); got != tt.want {
			t.Errorf("%+v: Idle() = %v", tt.s, got)
		}
	}
}
