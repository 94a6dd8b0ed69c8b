// Package mfrc522 reads ISO 14443A (MIFARE) cards with an NXP MFRC522 on SPI
// through periph.io/x/devices/v3/mfrc522, as a badge.Reader.
package mfrc522

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/devices/v3/mfrc522"

	"labelstation/drivers/badge"
)

// Opts configure the reader.
type Opts struct {
	// Wait is how long one card search waits for the IRQ line before Read
	// looks at ctx again; default 1s. periph's ReadUID cannot be
	// interrupted, so this bounds how late a cancelled Read returns.
	Wait time.Duration
	// Idle is the pause before searching again after a card was read, so a
	// card resting on the reader is not polled flat out; default 50ms.
	Idle time.Duration
	// After is the timer; nil means time.After.
	After func(time.Duration) <-chan time.Time
	// Gain is the receiver gain 1..7 (RFCfgReg RxGain, datasheet §9.3.3.6);
	// 0 keeps periph's 4 (38 dB).
	Gain int
}

// Dev is one MFRC522 reader.
type Dev struct {
	mu       sync.Mutex
	d        *mfrc522.Dev
	opt      Opts
	justRead bool
}

var _ badge.Reader = (*Dev)(nil)

// New initialises the MFRC522 (soft reset, timer, 100% ASK, antenna on) on
// port with its reset and IRQ lines (docs/wiring.md: RST GPIO22, IRQ GPIO23).
func New(port spi.Port, rst gpio.PinOut, irq gpio.PinIn, o Opts) (*Dev, error) {
	if o.Wait == 0 {
		o.Wait = time.Second
	}
	if o.Idle == 0 {
		o.Idle = 50 * time.Millisecond
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Gain < 0 || o.Gain > 7 {
		return nil, fmt.Errorf("mfrc522: gain %d: want 1..7 (0 for the default)", o.Gain)
	}
	d, err := mfrc522.NewSPI(port, rst, irq)
	if err != nil {
		return nil, fmt.Errorf("mfrc522: %w", err)
	}
	if o.Gain != 0 {
		if err := d.SetAntennaGain(o.Gain); err != nil {
			return nil, fmt.Errorf("mfrc522: %w", err)
		}
	}
	return &Dev{d: d, opt: o}, nil
}

func (r *Dev) String() string { return "mfrc522(" + r.d.String() + ")" }

// Read implements badge.Reader. A failed exchange with a card (taken away
// mid-read, collision, CRC) wraps badge.ErrBadFrame.
func (r *Dev) Read(ctx context.Context) (badge.Badge, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.justRead {
		r.justRead = false
		select {
		case <-r.opt.After(r.opt.Idle):
		case <-ctx.Done():
			return badge.Badge{}, ctx.Err()
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return badge.Badge{}, err
		}
		uid, err := r.d.ReadUID(r.opt.Wait)
		if err == nil {
			r.justRead = true
			return badge.Badge{UID: uid, Tech: badge.TechISO14443A}, nil
		}
		// periph exports no sentinel; its IRQ wait timeout means "no card".
		if strings.Contains(err.Error(), "timeout waiting for IRQ edge") {
			continue
		}
		return badge.Badge{}, fmt.Errorf("mfrc522: %v: %w", err, badge.ErrBadFrame)
	}
}

// Halt powers the chip down (CommandReg PowerDown, datasheet §9.3.1.2).
func (r *Dev) Halt() error {
	if err := r.d.Halt(); err != nil {
		return fmt.Errorf("mfrc522: %w", err)
	}
	return nil
}
