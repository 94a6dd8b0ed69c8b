package chaos

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"

	"labelstation/drivers/printer"
)

// recPrinter is a recording ZPL printer on TCP: it splits the stream into ^XA…^XZ labels, logs
// each one, answers ~HS with its status, and misbehaves on request the ways real printers do.
type recPrinter struct {
	ln net.Listener

	mu        sync.Mutex
	labels    []string
	queued    []string // received while out of paper; printed when paper is back
	status    printer.Status
	refusing  bool
	stalled   chan struct{} // non-nil while reads are held; closed to resume
	closeNext bool          // drop the connection instead of printing the next label
	// triggers fire when a label carrying their serial arrives, before it is printed, so a
	// fault lands exactly mid-job however fast the station writes.
	triggers map[string]func()
	fired    chan string
	conns    map[net.Conn]struct{}
	changed  chan struct{}
	wg       sync.WaitGroup
}

func newPrinter() (*recPrinter, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &recPrinter{ln: ln, conns: map[net.Conn]struct{}{}, changed: make(chan struct{}),
		triggers: map[string]func(){}, fired: make(chan string, 16)}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *recPrinter) url() string { return "tcp://" + p.ln.Addr().String() }

func (p *recPrinter) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refusing
		if !refuse {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if refuse {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST, as a printer that is busy with another host
			}
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *recPrinter) serve(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	var buf []byte
	tmp := make([]byte, 32<<10)
	for {
		p.mu.Lock()
		stall := p.stalled
		p.mu.Unlock()
		if stall != nil {
			<-stall
		}
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		var reply []byte
		var drop bool
		buf, reply, drop = p.consume(buf)
		if drop {
			return
		}
		if len(reply) > 0 {
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// consume handles the complete commands in buf; drop reports a connection closed mid-label.
func (p *recPrinter) consume(buf []byte) (rest, reply []byte, drop bool) {
	for {
		i := bytes.Index(buf, []byte("~HS"))
		if i < 0 {
			break
		}
		p.mu.Lock()
		reply = append(reply, printer.FormatZPLHostStatus(p.status)...)
		p.mu.Unlock()
		buf = append(buf[:i:i], buf[i+3:]...)
	}
	for {
		a := bytes.Index(buf, []byte("^XA"))
		if a < 0 {
			if len(buf) > 2 {
				buf = append([]byte(nil), buf[len(buf)-2:]...)
			}
			return buf, reply, false
		}
		z := bytes.Index(buf[a:], []byte("^XZ"))
		if z < 0 {
			return buf[a:], reply, false
		}
		label := string(buf[a : a+z+3])
		buf = buf[a+z+3:]
		p.mu.Lock()
		for serial, fire := range p.triggers {
			if strings.Contains(label, serial) {
				delete(p.triggers, serial)
				fire()
				select {
				case p.fired <- serial:
				default:
				}
			}
		}
		if p.closeNext {
			p.closeNext = false
			p.mu.Unlock()
			return nil, nil, true // the label dies with the connection
		}
		if p.status.PaperOut {
			p.queued = append(p.queued, label)
		} else {
			p.print(label)
		}
		p.mu.Unlock()
	}
}

// print records a label; p.mu is held.
func (p *recPrinter) print(label string) {
	p.labels = append(p.labels, label)
	close(p.changed)
	p.changed = make(chan struct{})
}

// snapshot returns the printed labels and a channel closed at the next one.
func (p *recPrinter) snapshot() ([]string, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.labels...), p.changed
}

// waitLabels waits until cond holds for the printed labels or ctx ends.
func (p *recPrinter) waitLabels(ctx context.Context, cond func([]string) bool) bool {
	for {
		ls, ch := p.snapshot()
		if cond(ls) {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// at runs fault (with p.mu held) when the label carrying serial arrives, before it is handled.
func (p *recPrinter) at(serial string, fault func()) {
	p.mu.Lock()
	p.triggers[serial] = fault
	p.mu.Unlock()
}

// Refuse drops every connection and refuses new ones until Heal.
func (p *recPrinter) Refuse() {
	p.mu.Lock()
	p.refusing = true
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Stall stops reading (the station's writes fill the socket buffers) until Heal.
func (p *recPrinter) Stall() {
	p.mu.Lock()
	if p.stalled == nil {
		p.stalled = make(chan struct{})
	}
	p.mu.Unlock()
}

// closeMidLabel (p.mu held) drops the connection when the next label arrives; that label is
// not printed.
func (p *recPrinter) closeMidLabel() { p.closeNext = true }

// paperOut (p.mu held) reports paper out on ~HS and holds the labels that arrive until Heal.
func (p *recPrinter) paperOut() { p.status.PaperOut = true }

// Heal ends every fault; labels held for paper print now.
func (p *recPrinter) Heal() {
	p.mu.Lock()
	p.refusing = false
	p.closeNext = false
	clear(p.triggers)
	if p.stalled != nil {
		close(p.stalled)
		p.stalled = nil
	}
	if p.status.PaperOut {
		p.status.PaperOut = false
		for _, l := range p.queued {
			p.print(l)
		}
		p.queued = nil
	}
	p.mu.Unlock()
}

func (p *recPrinter) Close() {
	p.ln.Close()
	p.Heal()
	p.Refuse()
	p.wg.Wait()
}
