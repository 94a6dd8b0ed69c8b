package chaos

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// proxy sits between the station and the broker. It forwards bytes both ways until told to cut
// (close every connection and reset new ones once accepted, as a middlebox whose far side is
// gone does), to go down (close every connection and stop listening: dials are refused, as
// when the network path or the broker's host is down), or to stall (keep the connections open
// but forward nothing, as a dead NAT entry or a hung Wi-Fi link does: only keep-alives can
// tell).
type proxy struct {
	mu0  sync.Mutex // guards ln and address
	ln   net.Listener
	addr string

	mu       sync.Mutex
	upstream string
	cut      bool
	stalled  bool
	gate     chan struct{} // closed while forwarding is allowed
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func newProxy(upstream string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, addr: ln.Addr().String(), upstream: upstream, gate: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.gate)
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

func (p *proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut, up := p.cut, p.upstream
		if !cut {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c, up)
	}
}

func (p *proxy) serve(c net.Conn, upstream string) {
	defer p.wg.Done()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		p.drop(c)
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		u.Close()
		p.drop(c)
		return
	}
	p.conns[u] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pipe(u, c); done <- struct{}{} }()
	go func() { p.pipe(c, u); done <- struct{}{} }()
	<-done
	p.drop(c)
	p.drop(u)
	<-done
}

// pipe copies src to dst, holding each chunk while the link is stalled.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

func (p *proxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// Cut closes every connection and refuses new ones until Restore.
func (p *proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Down closes every connection and the listening port until Up: dials are refused.
func (p *proxy) Down() {
	p.mu0.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	p.mu0.Unlock()
	p.Cut()
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Up listens again on the same port after Down.
func (p *proxy) Up() error {
	p.mu0.Lock()
	defer p.mu0.Unlock()
	if p.ln != nil {
		return nil
	}
	var err error
	for range 50 { // the port may linger a moment
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.ln = ln
			p.wg.Add(1)
			go p.accept(ln)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("chaos: proxy listen again on %s: %w", p.addr, err)
}

// Stall stops forwarding without closing anything until Restore.
func (p *proxy) Stall() {
	p.mu.Lock()
	if !p.stalled {
		p.stalled = true
		p.gate = make(chan struct{})
	}
	p.mu.Unlock()
}

// Restore ends a cut or a stall.
func (p *proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	if p.stalled {
		p.stalled = false
		close(p.gate)
	}
	p.mu.Unlock()
}

func (p *proxy) Close() {
	p.mu0.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	p.mu0.Unlock()
	p.Restore()
	p.Cut()
	p.wg.Wait()
}
