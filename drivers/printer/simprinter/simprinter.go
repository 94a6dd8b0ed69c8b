// Package simprinter is a simulated ZPL printer on raw TCP (port 9100 style)
// for development and tests. It prints every label it receives (one ^XA…^XZ
// block is one label), counts them in a lifetime label counter it reports to
// the SGD getvar "odometer.total_label_count" like a Link-OS Zebra, answers
// ~HS with a status it can be told to fake, optionally writes each label as a
// PNG, and lets tests wait for labels without sleeping.
//
// Faults, each a knob a test or cmd/simprinter can turn at any time: refuse
// connections, stall (accept but stop reading), close the connection part-way
// through the next label, any ~HS fault (paper out, head open, pause: labels
// received meanwhile wait in the buffer, reported as formats in buffer, and
// print once the fault clears, as on a Zebra), paper out after k more labels.
package simprinter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/creack/pty"
	"github.com/ingridhq/zebrash"
	"github.com/ingridhq/zebrash/drawers"

	"labelstation/drivers/printer"
)

// Options configure a Server.
type Options struct {
	// Dir, if set, receives label-0001.png, label-0002.png, … rendered
	// with zebrash.
	Dir string
	// DPI is the print resolution for rendering: 203 (default), 300 or 600.
	DPI int
	// WidthMm and HeightMm are the label stock; default 4×6 in.
	WidthMm, HeightMm float64
	// Status is the initial status reported to ~HS.
	Status printer.Status
	// Counter is the label counter's starting value (a printer's lifetime
	// count survives restarts; cmd/simprinter keeps it in a file).
	Counter int64
	// NoCounter makes the printer answer the counter getvar with "?", as a
	// Zebra without Link-OS does.
	NoCounter bool
	// OnLabel, if set, is called for every printed label with the counter
	// value after it, outside the server's lock and in print order.
	OnLabel func(counter int64, zpl string)
	// Logf, if set, receives render failures and connection errors.
	Logf func(format string, args ...any)
	// PrintTime is how long one label takes to print; labels received meanwhile wait in the
	// buffer (formats in buffer on ~HS) and the label counter counts a label once it is out.
	// Zero prints every label the moment it arrives.
	PrintTime time.Duration
}

// ErrClosed is returned by WaitLabels once the server is closed.
var ErrClosed = errors.New("simprinter: closed")

// Server is one simulated printer.
type Server struct {
	opt  Options
	dpmm int
	addr string

	// printMu keeps OnLabel calls in print order.
	printMu sync.Mutex

	mu            sync.Mutex
	ln            net.Listener // nil while refusing
	labels        []string     // printed, in order
	queue         []string     // received while faulted: the formats in buffer
	counter       int64
	status        printer.Status
	stalled       chan struct{} // non-nil while stalled; closed to resume
	dropAfter     int           // >0: cut the next label after this many bytes
	dropSkip      int           // complete labels to let through before that cut
	paperOutAfter int           // >0: paper runs out after this many more labels
	changed       chan struct{} // closed and replaced when labels grow
	work          chan struct{} // wakes the print loop; nil without a print time
	conns         map[conn]struct{}
	closed        chan struct{}
	renders       int

	wg sync.WaitGroup
}

// Listen starts a server on addr ("127.0.0.1:0" picks a free port).
func Listen(addr string, opt Options) (*Server, error) {
	dpmm := 8
	switch opt.DPI {
	case 0, 203:
	case 300:
		dpmm = 12
	case 600:
		dpmm = 24
	default:
		return nil, fmt.Errorf("simprinter: DPI %d: want 203, 300 or 600", opt.DPI)
	}
	if opt.WidthMm == 0 {
		opt.WidthMm = 101.6
	}
	if opt.HeightMm == 0 {
		opt.HeightMm = 152.4
	}
	if opt.Dir != "" {
		if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("simprinter: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("simprinter: %w", err)
	}
	s := &Server{
		ln: ln, opt: opt, dpmm: dpmm, status: opt.Status, counter: opt.Counter, addr: ln.Addr().String(),
		changed: make(chan struct{}), conns: map[conn]struct{}{}, closed: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.accept(ln)
	if opt.PrintTime > 0 {
		s.work = make(chan struct{}, 1)
		s.wg.Add(1)
		go s.printLoop()
	}
	return s, nil
}

// Addr is the listening address, host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the transport URL for printer.Dial.
func (s *Server) URL() string { return "tcp://" + s.Addr() }

// Labels returns all complete labels received, in order.
func (s *Server) Labels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.labels...)
}

// WaitLabels blocks until at least n labels were received and returns them
// all, or fails when ctx ends or the server closes.
func (s *Server) WaitLabels(ctx context.Context, n int) ([]string, error) {
	for {
		s.mu.Lock()
		if len(s.labels) >= n {
			l := append([]string(nil), s.labels...)
			s.mu.Unlock()
			return l, nil
		}
		ch, have := s.changed, len(s.labels)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.closed:
			return nil, fmt.Errorf("%w after %d of %d labels", ErrClosed, have, n)
		case <-ctx.Done():
			return nil, fmt.Errorf("simprinter: waiting for %d labels, have %d: %w", n, have, ctx.Err())
		}
	}
}

// Counter is the label counter: the starting value plus every label printed.
func (s *Server) Counter() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counter
}

// Status is what ~HS reports now.
func (s *Server) Status() printer.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *Server) statusLocked() printer.Status {
	st := s.status
	st.FormatsInBuffer += len(s.queue)
	return st
}

// SetStatus sets what ~HS reports from now on. Labels received while it
// names a fault wait in the buffer; clearing the fault prints them.
func (s *Server) SetStatus(st printer.Status) {
	s.mu.Lock()
	s.status = st
	s.mu.Unlock()
	s.flush()
}

// Stall makes the printer stop reading (its buffer is full, or its firmware
// hangs): connections stay open, writes to it block once the socket buffers
// fill, queries get no answer. Stall(false) resumes.
func (s *Server) Stall(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case on && s.stalled == nil:
		s.stalled = make(chan struct{})
	case !on && s.stalled != nil:
		close(s.stalled)
		s.stalled = nil
	}
}

// DropMidLabel makes the printer close the connection once it has received
// the first n bytes of the next label (n > 0), discarding that partial label,
// as a printer does when the cable is pulled or the network drops mid-label.
// It fires once.
func (s *Server) DropMidLabel(n int) { s.DropMidLabelAfter(0, n) }

// DropMidLabelAfter is DropMidLabel for the label after the next k labels received, so a
// fault lands mid-job however fast the host sends and however slowly the printer prints.
func (s *Server) DropMidLabelAfter(k, n int) {
	s.mu.Lock()
	s.dropSkip, s.dropAfter = k, n
	s.mu.Unlock()
}

// PaperOutAfter makes the paper run out once k more labels have printed
// (k > 0); later labels wait in the buffer until SetStatus clears the fault.
func (s *Server) PaperOutAfter(k int) {
	s.mu.Lock()
	s.paperOutAfter = k
	s.mu.Unlock()
}

// Refuse stops (true) or resumes (false) accepting connections: while
// refusing the port is closed, so a dial fails with "connection refused", as
// with a printer that is switched off. Open connections are dropped.
func (s *Server) Refuse(on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	switch {
	case on && s.ln != nil:
		err := s.ln.Close()
		s.ln = nil
		for c := range s.conns {
			if _, pty := c.(*ptyConn); !pty {
				c.Close()
			}
		}
		return err
	case !on && s.ln == nil:
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("simprinter: listen again: %w", err)
		}
		s.ln = ln
		s.wg.Add(1)
		go s.accept(ln)
	}
	return nil
}

// DropConnections closes every open TCP connection, as a printer reboot or
// a network blip does; the printer keeps listening.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if _, pty := c.(*ptyConn); !pty {
			c.Close()
		}
	}
}

// Close stops listening, drops connections and waits for them to end.
func (s *Server) Close() error {
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		return nil
	default:
	}
	close(s.closed)
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	if s.stalled != nil {
		close(s.stalled)
		s.stalled = nil
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		select {
		case <-s.closed:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.opt.Logf != nil {
		s.opt.Logf(format, args...)
	}
}

// ServePTY also serves the printer on a new pseudo-terminal, as a serial
// printer, and returns the path of its tty (for "serial://" + path). The
// pty closes with the server.
func (s *Server) ServePTY() (string, error) {
	master, tty, err := pty.Open()
	if err != nil {
		return "", fmt.Errorf("simprinter: pty: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		master.Close()
		tty.Close()
		return "", ErrClosed
	default:
	}
	// Keep tty open for the server's life: the master reads EIO whenever
	// no slave descriptor is open, e.g. between two printer.Dial calls.
	c := &ptyConn{File: master, tty: tty}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	go s.serve(c)
	return tty.Name(), nil
}

type ptyConn struct {
	*os.File
	tty *os.File
}

func (p *ptyConn) Close() error {
	p.tty.Close()
	return p.File.Close()
}

// conn is a TCP connection or a pty master.
type conn interface {
	io.ReadWriteCloser
}

func (s *Server) serve(c conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		if !s.waitUnstalled() {
			return
		}
		n, err := c.Read(tmp)
		// A read already under way when the stall began: hold its bytes.
		if !s.waitUnstalled() {
			return
		}
		buf = append(buf, tmp[:n]...)
		var reply []byte
		var drop bool
		buf, reply, drop = s.consume(buf)
		if len(reply) > 0 {
			if _, werr := c.Write(reply); werr != nil {
				s.logf("simprinter: %v", werr)
				return
			}
		}
		if drop {
			s.logf("simprinter: connection dropped mid-label (fault injected)")
			return
		}
		if err != nil {
			return
		}
	}
}

// waitUnstalled blocks while the printer is stalled; false means the server
// closed.
func (s *Server) waitUnstalled() bool {
	for {
		s.mu.Lock()
		ch := s.stalled
		s.mu.Unlock()
		if ch == nil {
			return true
		}
		select {
		case <-ch:
		case <-s.closed:
			return false
		}
	}
}

var (
	hostStatus = []byte("~HS")
	startFmt   = []byte("^XA")
	endFmt     = []byte("^XZ")
	sgdGetvar  = []byte("! U1 GETVAR")
)

// consume handles every complete command in buf, in the order received, and returns what is
// left (a partial label or command), the bytes to send back, and whether to drop the connection
// (an injected fault). A real Zebra executes ~ commands as they arrive, even inside a format,
// so ~HS is answered wherever it appears; formats and SGD commands run in order, so a counter
// getvar sent after a label sees that label counted. A connection cut part-way through a label
// answers nothing sent after the cut: the printer never read it.
func (s *Server) consume(buf []byte) (rest, reply []byte, drop bool) {
	for {
		// A stall stops the printer at once, also between commands already read.
		if !s.waitUnstalled() {
			return nil, nil, true
		}
		up := bytes.ToUpper(buf)
		h, a, g := bytes.Index(up, hostStatus), bytes.Index(up, startFmt), bytes.Index(up, sgdGetvar)
		switch {
		case h >= 0 && (a < 0 || h < a) && (g < 0 || h < g):
			reply = append(reply, printer.FormatZPLHostStatus(s.Status())...)
			buf = append(buf[:h:h], buf[h+len(hostStatus):]...)
		case g >= 0 && (a < 0 || g < a):
			nl := bytes.IndexByte(buf[g:], '\n')
			if nl < 0 {
				return buf[g:], reply, false
			}
			reply = append(reply, s.getvar(string(buf[g+len(sgdGetvar):g+nl]))...)
			buf = buf[g+nl+1:]
		case a >= 0:
			buf = buf[a:]
			lim, complete := len(buf), false
			if z := bytes.Index(bytes.ToUpper(buf), endFmt); z >= 0 {
				lim, complete = z+len(endFmt), true
			}
			s.mu.Lock()
			cut := s.dropAfter
			if cut > 0 && s.dropSkip > 0 {
				cut = 0
				if complete {
					s.dropSkip--
				}
			}
			if cut > 0 && lim > cut {
				s.dropAfter = 0
			}
			s.mu.Unlock()
			if cut > 0 && lim > cut {
				reply = append(reply, s.hostStatusIn(buf[:cut])...)
				return nil, reply, true
			}
			r, label := s.hostStatusIn(buf[:lim]), stripHostStatus(buf[:lim])
			reply = append(reply, r...)
			if !bytes.HasSuffix(bytes.ToUpper(label), endFmt) {
				return label, reply, false
			}
			s.receive(string(label))
			buf = buf[lim:]
		default:
			// Keep a possible partial "^X", "~H" or "! U1 getva" for the next read.
			if keep := len(sgdGetvar) - 1; len(buf) > keep {
				buf = append([]byte(nil), buf[len(buf)-keep:]...)
			}
			return buf, reply, false
		}
	}
}

// hostStatusIn answers every ~HS in b.
func (s *Server) hostStatusIn(b []byte) []byte {
	var reply []byte
	for range bytes.Count(bytes.ToUpper(b), hostStatus) {
		reply = append(reply, printer.FormatZPLHostStatus(s.Status())...)
	}
	return reply
}

// stripHostStatus returns b without its ~HS commands: they are not part of the label.
func stripHostStatus(b []byte) []byte {
	var out []byte
	for {
		i := bytes.Index(bytes.ToUpper(b), hostStatus)
		if i < 0 {
			return append(out, b...)
		}
		out = append(out, b[:i]...)
		b = b[i+len(hostStatus):]
	}
}

// getvar answers an SGD getvar: the label counter, or "?" for anything else.
func (s *Server) getvar(arg string) []byte {
	name, _ := strconv.Unquote(string(bytes.TrimSpace([]byte(arg))))
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "odometer.total_label_count" || s.opt.NoCounter {
		return []byte(`"?"`)
	}
	return fmt.Appendf(nil, "%q", strconv.FormatInt(s.counter, 10))
}

// receive prints a complete label, or queues it while the printer is faulted.
func (s *Server) receive(zpl string) {
	s.mu.Lock()
	s.queue = append(s.queue, zpl)
	s.mu.Unlock()
	s.flush()
}

// flush prints queued labels while the printer has no fault: at once, or with a print time
// by waking the print loop.
func (s *Server) flush() {
	if s.work != nil {
		select {
		case s.work <- struct{}{}:
		default: // the loop is awake already
		}
		return
	}
	for s.printNext() {
	}
}

// printNext prints the first queued label unless the queue is empty or the printer faulted.
func (s *Server) printNext() bool {
	s.printMu.Lock()
	defer s.printMu.Unlock()
	s.mu.Lock()
	if len(s.queue) == 0 || s.status.Fault() != nil {
		s.mu.Unlock()
		return false
	}
	zpl := s.queue[0]
	s.queue = s.queue[1:]
	s.counter++
	n := s.counter
	if s.paperOutAfter > 0 {
		s.paperOutAfter--
		if s.paperOutAfter == 0 {
			s.status.PaperOut = true
		}
	}
	s.mu.Unlock()
	s.addLabel(zpl)
	if s.opt.OnLabel != nil {
		s.opt.OnLabel(n, zpl)
	}
	return true
}

// printLoop prints the queue one label per PrintTime, as a print engine does: a label stays in
// the buffer (reported by ~HS) until it is out, and the printer reads on meanwhile.
func (s *Server) printLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		ready := len(s.queue) > 0 && s.status.Fault() == nil
		s.mu.Unlock()
		if !ready {
			select {
			case <-s.work:
				continue
			case <-s.closed:
				return
			}
		}
		if !s.waitUnstalled() {
			return
		}
		t := time.NewTimer(s.opt.PrintTime)
		select {
		case <-t.C:
		case <-s.closed:
			t.Stop()
			return
		}
		s.printNext()
	}
}

func (s *Server) addLabel(zpl string) {
	if s.opt.Dir != "" {
		s.mu.Lock()
		s.renders++
		name := filepath.Join(s.opt.Dir, fmt.Sprintf("label-%04d.png", s.renders))
		s.mu.Unlock()
		if err := s.render(zpl, name); err != nil {
			s.logf("simprinter: %s: %v", name, err)
		}
	}
	s.mu.Lock()
	s.labels = append(s.labels, zpl)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *Server) render(zpl, name string) error {
	labels, err := zebrash.NewParser().Parse([]byte(zpl))
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if len(labels) == 0 {
		return errors.New("parse: no label")
	}
	var png bytes.Buffer
	err = zebrash.NewDrawer().DrawLabelAsPng(labels[0], &png, drawers.DrawerOptions{
		LabelWidthMm: s.opt.WidthMm, LabelHeightMm: s.opt.HeightMm, Dpmm: s.dpmm,
	})
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	return os.WriteFile(name, png.Bytes(), 0o644)
}
