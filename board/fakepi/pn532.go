package fakepi

import (
	"errors"
	"slices"
	"sync"
)

// PN532 answers like a PN532 on I²C (NXP UM0701-02 §6.2.4): a written
// command frame is acknowledged, then answered from the table below; every
// read starts with the status byte, 0x01 when a frame is ready.
//
//	SAMConfiguration      D4 14 … → D5 15
//	GetFirmwareVersion    D4 02   → D5 03 32 01 06 07 (PN532 v1.6)
//	RFConfiguration       D4 32 … → D5 33
//	InListPassiveTarget   D4 4A … → D5 4B 00, or D5 4B 01 01 SENS_RES SEL_RES len UID
//	anything else                 → error frame 00 00 FF 01 FF 7F 81 00
type PN532 struct {
	mu      sync.Mutex
	card    []byte
	pending [][]byte
	last    []byte
	fieldOn bool
	polls   int
	// unplugged: every transfer fails, as with a loose cable.
	unplugged bool
}

var _ Device = (*PN532)(nil)

// NewPN532 returns a fake PN532 with no card in the field.
func NewPN532() *PN532 { return &PN532{fieldOn: true} }

// Present puts a card with uid (4, 7 or 10 bytes) on the reader until Remove.
func (p *PN532) Present(uid []byte) {
	p.mu.Lock()
	p.card = slices.Clone(uid)
	p.mu.Unlock()
}

// Remove takes the card away.
func (p *PN532) Remove() {
	p.mu.Lock()
	p.card = nil
	p.mu.Unlock()
}

// FieldOn reports whether the RF field is on (Halt turns it off).
func (p *PN532) FieldOn() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fieldOn
}

// Polls counts InListPassiveTarget commands received.
func (p *PN532) Polls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.polls
}

var (
	fakeACK   = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	fakeNACK  = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
	fakeError = []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00}
)

// Unplug makes every transfer fail until Plug, as a chip on a loose cable does; whatever it
// was about to answer is lost.
func (p *PN532) Unplug() {
	p.mu.Lock()
	p.unplugged, p.pending, p.last = true, nil, nil
	p.mu.Unlock()
}

// Plug reconnects the chip after Unplug.
func (p *PN532) Plug() {
	p.mu.Lock()
	p.unplugged = false
	p.mu.Unlock()
}

// errUnplugged is what the bus reports for a transfer nobody acknowledges.
var errUnplugged = errors.New("fakepi: pn532: address 0x24 not acknowledged (unplugged)")

// Tx implements Device.
func (p *PN532) Tx(w, r []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unplugged {
		return errUnplugged
	}
	if len(w) > 0 {
		p.receive(w)
	}
	if len(r) > 0 {
		clear(r)
		if len(p.pending) == 0 {
			return nil // status 0: busy
		}
		r[0] = 0x01
		if len(r) > 1 {
			copy(r[1:], p.pending[0])
			p.pending = p.pending[1:]
		}
	}
	return nil
}

func (p *PN532) receive(w []byte) {
	if slices.Equal(w, fakeNACK) {
		if p.last != nil {
			p.pending = append(p.pending, p.last)
		}
		return
	}
	// 00 00 FF LEN LCS D4 CMD … DCS 00
	if len(w) < 8 || w[0] != 0 || w[1] != 0 || w[2] != 0xFF || w[3]+w[4] != 0 || int(w[3])+7 != len(w) {
		return // a real PN532 ignores a malformed frame: no ACK
	}
	body := w[5 : 5+int(w[3])]
	var sum byte
	for _, c := range body {
		sum += c
	}
	if sum+w[len(w)-2] != 0 || body[0] != 0xD4 {
		return
	}
	var resp []byte
	switch cmd, params := body[1], body[2:]; cmd {
	case 0x14:
		resp = []byte{0x15}
	case 0x02:
		resp = []byte{0x03, 0x32, 0x01, 0x06, 0x07}
	case 0x32:
		if len(params) >= 2 && params[0] == 0x01 {
			p.fieldOn = params[1]&0x01 != 0
		}
		resp = []byte{0x33}
	case 0x4A:
		p.polls++
		p.fieldOn = true
		if p.card == nil {
			resp = []byte{0x4B, 0x00}
		} else {
			sens, sel := []byte{0x00, 0x04}, byte(0x08) // MIFARE Classic 1K
			if len(p.card) != 4 {
				sens, sel = []byte{0x00, 0x44}, 0x00 // NTAG / Ultralight
			}
			resp = append([]byte{0x4B, 0x01, 0x01}, sens...)
			resp = append(resp, sel, byte(len(p.card)))
			resp = append(resp, p.card...)
		}
	default:
		p.pending = append(p.pending, fakeACK, fakeError)
		p.last = fakeError
		return
	}
	p.last = frame(append([]byte{0xD5}, resp...))
	p.pending = append(p.pending, fakeACK, p.last)
}

// frame wraps TFI+data in a normal information frame (UM §6.2.1.1).
func frame(body []byte) []byte {
	n := byte(len(body))
	f := []byte{0x00, 0x00, 0xFF, n, -n}
	var sum byte
	for _, c := range body {
		sum += c
	}
	f = append(f, body...)
	return append(f, -sum, 0x00)
}
