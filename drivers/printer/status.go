package printer

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Status is the printer's fault state, parsed from ZPL ~HS, TSPL <ESC>!? or
// ESC/POS DLE EOT n. Languages report different subsets; a flag a language
// cannot report stays false.
type Status struct {
	PaperOut    bool
	HeadOpen    bool // ZPL head up, TSPL head opened
	RibbonOut   bool
	Paused      bool
	BufferFull  bool
	PaperJam    bool
	CoverOpen   bool
	Offline     bool // ESC/POS offline without a more specific cause
	CutterError bool
	OverTemp    bool
	UnderTemp   bool
	CorruptRAM  bool
	OtherError  bool // ESC/POS unrecoverable or auto-recoverable error

	// Informational, not faults.
	PaperNearEnd    bool
	Printing        bool
	FormatsInBuffer int // ZPL: formats waiting in the receive buffer
	LabelsRemaining int // ZPL: labels remaining in the batch
}

// ErrFault is wrapped by Status.Fault.
var ErrFault = errors.New("printer: fault")

// Faults names the fault flags that are set, in a fixed order.
func (s Status) Faults() []string {
	var f []string
	add := func(b bool, name string) {
		if b {
			f = append(f, name)
		}
	}
	add(s.PaperOut, "paper out")
	add(s.HeadOpen, "head open")
	add(s.RibbonOut, "ribbon out")
	add(s.Paused, "paused")
	add(s.BufferFull, "buffer full")
	add(s.PaperJam, "paper jam")
	add(s.CoverOpen, "cover open")
	add(s.Offline, "offline")
	add(s.CutterError, "cutter error")
	add(s.OverTemp, "over temperature")
	add(s.UnderTemp, "under temperature")
	add(s.CorruptRAM, "configuration lost")
	add(s.OtherError, "printer error")
	return f
}

// Fault is nil when the printer is ready, else an error wrapping ErrFault
// that names every fault, e.g. "printer: fault: paper out, head open".
func (s Status) Fault() error {
	f := s.Faults()
	if len(f) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrFault, strings.Join(f, ", "))
}

// ErrStatus is wrapped when a status reply cannot be parsed.
var ErrStatus = errors.New("printer: bad status reply")

const (
	stx = 0x02
	etx = 0x03
)

// zplStatusComplete reports whether b holds the three <STX>…<ETX> strings
// of a ~HS reply.
func zplStatusComplete(b []byte) bool {
	return bytes.Count(b, []byte{etx}) >= 3
}

// ParseZPLHostStatus parses the reply to ~HS (ZPL II Programming Guide,
// "~HS Host Status Return"): three strings, each <STX>…<ETX><CR><LF>:
//
//	1: aaa,b,c,dddd,eee,f,g,h,iii,j,k,l   b paper out, c pause, eee formats in buffer,
//	                                      f buffer full, j corrupt RAM, k under temp, l over temp
//	2: mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www   o head up, p ribbon out, uuuuuuuu labels remaining
//	3: xxxx,y
//
// Bytes before the first STX (e.g. the tail of an older reply) are skipped.
func ParseZPLHostStatus(b []byte) (Status, error) {
	var s Status
	var strs [][]string
	rest := b
	for len(strs) < 3 {
		i := bytes.IndexByte(rest, stx)
		if i < 0 {
			return s, fmt.Errorf("%w: ~HS: %d of 3 strings", ErrStatus, len(strs))
		}
		j := bytes.IndexByte(rest[i:], etx)
		if j < 0 {
			return s, fmt.Errorf("%w: ~HS: string %d has no ETX", ErrStatus, len(strs)+1)
		}
		strs = append(strs, strings.Split(string(rest[i+1:i+j]), ","))
		rest = rest[i+j+1:]
	}
	for i, want := range []int{12, 11, 2} {
		if len(strs[i]) != want {
			return s, fmt.Errorf("%w: ~HS: string %d has %d fields, want %d", ErrStatus, i+1, len(strs[i]), want)
		}
	}
	var err error
	flag := func(str, field int, name string) bool {
		v := strings.TrimSpace(strs[str-1][field-1])
		switch v {
		case "0":
			return false
		case "1":
			return true
		}
		if err == nil {
			err = fmt.Errorf("%w: ~HS: string %d field %d (%s) = %q, want 0 or 1", ErrStatus, str, field, name, v)
		}
		return false
	}
	num := func(str, field int, name string) int {
		v := strings.TrimSpace(strs[str-1][field-1])
		n, perr := strconv.Atoi(v)
		if perr != nil && err == nil {
			err = fmt.Errorf("%w: ~HS: string %d field %d (%s) = %q, want a number", ErrStatus, str, field, name, v)
		}
		return n
	}
	s.PaperOut = flag(1, 2, "paper out")
	s.Paused = flag(1, 3, "pause")
	s.FormatsInBuffer = num(1, 5, "formats in buffer")
	s.BufferFull = flag(1, 6, "buffer full")
	s.CorruptRAM = flag(1, 10, "corrupt RAM")
	s.UnderTemp = flag(1, 11, "under temperature")
	s.OverTemp = flag(1, 12, "over temperature")
	s.HeadOpen = flag(2, 3, "head up")
	s.RibbonOut = flag(2, 4, "ribbon out")
	s.LabelsRemaining = num(2, 9, "labels remaining")
	return s, err
}

// FormatZPLHostStatus renders s as a ~HS reply, the inverse of
// ParseZPLHostStatus; fields the Status does not carry get typical values
// (9600 8N1, 1218-dot label, thermal transfer, tear-off).
func FormatZPLHostStatus(s Status) []byte {
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	return fmt.Appendf(nil,
		"\x02030,%d,%d,1218,%03d,%d,0,0,000,%d,%d,%d\x03\r\n"+
			"\x02001,0,%d,%d,1,2,6,0,%08d,1,000\x03\r\n"+
			"\x021234,0\x03\r\n",
		b(s.PaperOut), b(s.Paused), s.FormatsInBuffer, b(s.BufferFull), b(s.CorruptRAM), b(s.UnderTemp), b(s.OverTemp),
		b(s.HeadOpen), b(s.RibbonOut), s.LabelsRemaining)
}

// TSPL <ESC>!? status bits (TSPL/TSPL2 Programming Manual, "<ESC>!?"):
// one byte, 0 means ready.
const (
	tsplHeadOpen  = 1 << 0
	tsplPaperJam  = 1 << 1
	tsplPaperOut  = 1 << 2
	tsplRibbonOut = 1 << 3
	tsplPause     = 1 << 4
	tsplPrinting  = 1 << 5
	tsplCoverOpen = 1 << 6
	tsplOverTemp  = 1 << 7
)

// ParseTSPLStatus decodes the one-byte reply to <ESC>!?.
func ParseTSPLStatus(b byte) Status {
	return Status{
		HeadOpen:  b&tsplHeadOpen != 0,
		PaperJam:  b&tsplPaperJam != 0,
		PaperOut:  b&tsplPaperOut != 0,
		RibbonOut: b&tsplRibbonOut != 0,
		Paused:    b&tsplPause != 0,
		Printing:  b&tsplPrinting != 0,
		CoverOpen: b&tsplCoverOpen != 0,
		OverTemp:  b&tsplOverTemp != 0,
	}
}

// ESC/POS DLE EOT n replies (Epson ESC/POS Command Reference, "DLE EOT"):
// one byte each with bits 1 and 4 fixed on and bits 0 and 7 fixed off.
const (
	escposFixedMask = 0x93
	escposFixed     = 0x12

	escposOffline      = 1 << 3 // n=1 printer status
	escposCoverOpen    = 1 << 2 // n=2 offline cause
	escposPaperEndStop = 1 << 5 // n=2
	escposErrorOccured = 1 << 6 // n=2
	escposCutterError  = 1 << 3 // n=3 error cause
	escposUnrecover    = 1 << 5 // n=3
	escposAutoRecover  = 1 << 6 // n=3
	escposNearEnd      = 0x0c   // n=4 roll sensor, bits 2 and 3
	escposRollEnd      = 0x60   // n=4, bits 5 and 6
)

// escposQuery asks for the four real-time statuses n=1..4 in order.
var escposQuery = []byte{0x10, 0x04, 1, 0x10, 0x04, 2, 0x10, 0x04, 3, 0x10, 0x04, 4}

// ParseESCPOSStatus decodes the replies to DLE EOT 1, 2, 3 and 4, in that
// order.
func ParseESCPOSStatus(r [4]byte) (Status, error) {
	for i, b := range r {
		if b&escposFixedMask != escposFixed {
			return Status{}, fmt.Errorf("%w: DLE EOT %d reply %#02x: fixed bits 1,4 on and 0,7 off violated", ErrStatus, i+1, b)
		}
	}
	s := Status{
		CoverOpen:    r[1]&escposCoverOpen != 0,
		PaperOut:     r[1]&escposPaperEndStop != 0 || r[3]&escposRollEnd != 0,
		CutterError:  r[2]&escposCutterError != 0,
		OtherError:   r[2]&(escposUnrecover|escposAutoRecover) != 0,
		PaperNearEnd: r[3]&escposNearEnd != 0,
	}
	// Offline or "error occurred" without a specific cause still means
	// the printer will not print.
	if (r[0]&escposOffline != 0 || r[1]&escposErrorOccured != 0) && len(s.Faults()) == 0 {
		s.Offline = true
	}
	return s, nil
}

// ParseSGDCounter parses the reply to an SGD getvar of a counter: the value
// in double quotes, e.g. "1234" (Zebra "SGD Printer Commands", getvar). A
// printer that does not know the variable answers "?", which wraps
// ErrUnsupported.
func ParseSGDCounter(b []byte) (int64, error) {
	i := bytes.IndexByte(b, '"')
	if i < 0 {
		return 0, fmt.Errorf("%w: getvar: %q has no quoted value", ErrStatus, b)
	}
	j := bytes.IndexByte(b[i+1:], '"')
	if j < 0 {
		return 0, fmt.Errorf("%w: getvar: %q has no closing quote", ErrStatus, b)
	}
	v := strings.TrimSpace(string(b[i+1 : i+1+j]))
	if v == "?" || v == "" {
		return 0, fmt.Errorf("%w: the printer has no label counter (getvar answered %q)", ErrUnsupported, v)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: getvar: counter %q is not a count", ErrStatus, v)
	}
	return n, nil
}

// Idle reports whether a ZPL printer has nothing left to print: no format
// waiting in its buffer and no label of a batch left. Other languages do not
// report it and look idle unless they say they are printing (TSPL).
func (s Status) Idle() bool { return s.FormatsInBuffer == 0 && s.LabelsRemaining == 0 && !s.Printing }
