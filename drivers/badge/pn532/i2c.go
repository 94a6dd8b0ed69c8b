package pn532

import (
	"context"
	"fmt"

	"periph.io/x/conn/v3/i2c"
)

// I2CAddr is the PN532's 7-bit I²C address (UM §6.2.4: 0x48 write, 0x49 read).
const I2CAddr = 0x24

// NewI2C opens a PN532 on an I²C bus (interface select pins I0=1, I1=0; UM §6.2.4) and
// initialises it.
func NewI2C(ctx context.Context, bus i2c.Bus, opt Opts) (*Dev, error) {
	o := opt.withDefaults()
	return newDev(ctx, &i2cLink{d: i2c.Dev{Bus: bus, Addr: I2CAddr}, opt: o}, o, nil)
}

// i2cLink: every I²C read starts with a status byte whose bit 0 is RDY
// (UM §6.2.4); the host polls it, then reads status + frame in one read.
type i2cLink struct {
	d   i2c.Dev
	opt Opts
}

func (l *i2cLink) String() string { return l.d.String() }

func (l *i2cLink) writeFrame(f []byte) error {
	if err := l.d.Tx(f, nil); err != nil {
		return fmt.Errorf("pn532: i2c write: %w", err)
	}
	return nil
}

func (l *i2cLink) readFrame(ctx context.Context, n int) ([]byte, error) {
	var st [1]byte
	for {
		if err := l.d.Tx(nil, st[:]); err != nil {
			return nil, fmt.Errorf("pn532: i2c status: %w", err)
		}
		if st[0]&0x01 != 0 {
			break
		}
		select {
		case <-l.opt.After(l.opt.Poll):
		case <-ctx.Done():
			return nil, fmt.Errorf("pn532: i2c: not ready: %w", ctx.Err())
		}
	}
	b := make([]byte, 1+n)
	if err := l.d.Tx(nil, b); err != nil {
		return nil, fmt.Errorf("pn532: i2c read: %w", err)
	}
	return b[1:], nil
}
