package pn532

import (
	"context"
	"fmt"
	"math/bits"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// SPI operation bytes, UM §6.2.5.
const (
	spiDataWrite  = 0x01
	spiStatusRead = 0x02
	spiDataRead   = 0x03
)

// NewSPI opens a PN532 on an SPI port (I0=0, I1=1; UM §6.2.5) and initialises it.
// The PN532 shifts LSB first (UM §6.2.5); not every SPI host can, so the
// link runs mode 0 MSB first and reverses each byte's bits in software.
func NewSPI(ctx context.Context, port spi.Port, opt Opts) (*Dev, error) {
	c, err := port.Connect(1*physic.MegaHertz, spi.Mode0, 8)
	if err != nil {
		return nil, fmt.Errorf("pn532: spi: %w", err)
	}
	o := opt.withDefaults()
	return newDev(ctx, &spiLink{c: c, opt: o}, o, nil)
}

type spiLink struct {
	c   spi.Conn
	opt Opts
}

func (l *spiLink) String() string { return l.c.String() }

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[i] = bits.Reverse8(c)
	}
	return r
}

func (l *spiLink) writeFrame(f []byte) error {
	w := reverse(append([]byte{spiDataWrite}, f...))
	if err := l.c.Tx(w, nil); err != nil {
		return fmt.Errorf("pn532: spi write: %w", err)
	}
	return nil
}

func (l *spiLink) readFrame(ctx context.Context, n int) ([]byte, error) {
	sr := reverse([]byte{spiStatusRead, 0x00})
	st := make([]byte, 2)
	for {
		if err := l.c.Tx(sr, st); err != nil {
			return nil, fmt.Errorf("pn532: spi status: %w", err)
		}
		if bits.Reverse8(st[1])&0x01 != 0 {
			break
		}
		select {
		case <-l.opt.After(l.opt.Poll):
		case <-ctx.Done():
			return nil, fmt.Errorf("pn532: spi: not ready: %w", ctx.Err())
		}
	}
	w := make([]byte, 1+n)
	w[0] = spiDataRead
	r := make([]byte, 1+n)
	if err := l.c.Tx(reverse(w), r); err != nil {
		return nil, fmt.Errorf("pn532: spi read: %w", err)
	}
	return reverse(r[1:]), nil
}
