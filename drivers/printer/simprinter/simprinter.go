// Package simprinter is a simulated ZPL printer on raw TCP (port 9100 style)
// for development and tests. It keeps every label it receives (one ^XA…^XZ
// block is one label), answers ~HS with a status it can be told to fake,
// optionally writes each label as a PNG, and lets tests wait for labels
// without sleeping.
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
	"sync"

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
	// Logf, if set, receives render failures and connection errors.
	Logf func(format string, args ...any)
}

// ErrClosed is returned by WaitLabels once the server is closed.
var ErrClosed = errors.New("simprinter: closed")

// Server is one simulated printer.
type Server struct {
	ln   net.Listener
	opt  Options
	dpmm int

	mu      sync.Mutex
	labels  []string
	status  printer.Status
	changed chan struct{} // closed and replaced when labels grow
	conns   map[conn]struct{}
	closed  chan struct{}
	renders int

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
		ln: ln, opt: opt, dpmm: dpmm, status: opt.Status,
		changed: make(chan struct{}), conns: map[conn]struct{}{}, closed: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listening address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

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

// SetStatus sets what ~HS reports from now on.
func (s *Server) SetStatus(st printer.Status) {
	s.mu.Lock()
	s.status = st
	s.mu.Unlock()
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
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
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
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		var reply []byte
		buf, reply = s.consume(buf)
		if len(reply) > 0 {
			if _, werr := c.Write(reply); werr != nil {
				s.logf("simprinter: %v", werr)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

var (
	hostStatus = []byte("~HS")
	startFmt   = []byte("^XA")
	endFmt     = []byte("^XZ")
)

// consume handles every complete command in buf and returns what is left
// (a partial label or command) and the bytes to send back. A real Zebra
// executes ~ commands as they arrive, even inside a format, so ~HS is
// answered wherever it appears.
func (s *Server) consume(buf []byte) (rest, reply []byte) {
	for {
		i := bytes.Index(bytes.ToUpper(buf), hostStatus)
		if i < 0 {
			break
		}
		s.mu.Lock()
		st := s.status
		s.mu.Unlock()
		reply = append(reply, printer.FormatZPLHostStatus(st)...)
		buf = append(buf[:i:i], buf[i+len(hostStatus):]...)
	}
	for {
		a := bytes.Index(bytes.ToUpper(buf), startFmt)
		if a < 0 {
			// Keep a possible partial "^X" or "~H" for the next read.
			if len(buf) > 2 {
				buf = append([]byte(nil), buf[len(buf)-2:]...)
			}
			return buf, reply
		}
		z := bytes.Index(bytes.ToUpper(buf[a:]), endFmt)
		if z < 0 {
			return buf[a:], reply
		}
		s.addLabel(string(buf[a : a+z+len(endFmt)]))
		buf = buf[a+z+len(endFmt):]
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
