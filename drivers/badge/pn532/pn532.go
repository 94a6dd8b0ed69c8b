// Package pn532 drives an NXP PN532 NFC controller as an ISO 14443A badge
// reader over I²C, SPI or HSU (UART), written from the NXP PN532 User
// Manual UM0701-02. (The known Go driver is LGPL and cannot be linked into
// our static binary.)
package pn532

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"labelstation/drivers/badge"
)

// Commands, UM §7.
const (
	cmdGetFirmwareVersion  = 0x02 // §7.2.2
	cmdSAMConfiguration    = 0x14 // §7.2.10
	cmdRFConfiguration     = 0x32 // §7.3.1
	cmdInListPassiveTarget = 0x4A // §7.3.5
)

// maxTargetA bounds InListPassiveTarget's reply: NbTg, Tg, SENS_RES(2),
// SEL_RES, NFCIDLength, a 10-byte NFCID1 and room for an ATS.
const maxTargetA = 40

// Opts configure a Dev. Zero values take the documented defaults.
type Opts struct {
	// Timeout bounds one command exchange; default 1s.
	Timeout time.Duration
	// Poll is how often the I²C/SPI status byte is polled while the PN532
	// is busy; default 2ms.
	Poll time.Duration
	// Idle is the pause between two card searches (after no card, and
	// before searching again after a card was read, so a card resting on
	// the reader is not polled flat out); default 50ms, which keeps the
	// tap-to-feedback time well under 100ms.
	Idle time.Duration
	// PassiveRetries is MxRtyPassiveActivation (UM §7.3.1, CfgItem 5):
	// how often one InListPassiveTarget retries before reporting no card.
	// Default 2; 0xFF would wait forever and make Read uncancellable.
	PassiveRetries byte
	// After is the timer; nil means time.After. Tests pass an immediate one.
	After func(time.Duration) <-chan time.Time
}

func (o Opts) withDefaults() Opts {
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	if o.Poll == 0 {
		o.Poll = 2 * time.Millisecond
	}
	if o.Idle == 0 {
		o.Idle = 50 * time.Millisecond
	}
	if o.PassiveRetries == 0 {
		o.PassiveRetries = 2
	}
	if o.After == nil {
		o.After = time.After
	}
	return o
}

// link is one physical interface (UM §6.2.2-6.2.5).
type link interface {
	writeFrame(f []byte) error
	// readFrame waits (within ctx) until the PN532 has a frame of at most
	// n bytes ready and returns the raw bytes holding it.
	readFrame(ctx context.Context, n int) ([]byte, error)
	String() string
}

// Dev is one PN532.
type Dev struct {
	l        link
	opt      Opts
	mu       sync.Mutex
	justRead bool // the last Read returned a card
	Firmware Firmware
}

// Firmware is the GetFirmwareVersion reply (UM §7.2.2).
type Firmware struct {
	IC, Ver, Rev, Support byte
}

var _ badge.Reader = (*Dev)(nil)

func newDev(ctx context.Context, l link, opt Opts, wake func() error) (*Dev, error) {
	d := &Dev{l: l, opt: opt.withDefaults()}
	if wake != nil {
		if err := wake(); err != nil {
			return nil, err
		}
	}
	// SAMConfiguration first: in HSU it also completes the wake-up (UM §7.2.11).
	// Mode 1 = normal (no SAM), timeout 0x14 × 50ms, IRQ pin used.
	if _, err := d.exchange(ctx, cmdSAMConfiguration, []byte{0x01, 0x14, 0x01}, 0); err != nil {
		return nil, fmt.Errorf("pn532: %s: SAMConfiguration: %w", l, err)
	}
	r, err := d.exchange(ctx, cmdGetFirmwareVersion, nil, 4)
	if err != nil {
		return nil, fmt.Errorf("pn532: %s: GetFirmwareVersion: %w", l, err)
	}
	if len(r) != 4 || r[0] != 0x32 {
		return nil, fmt.Errorf("pn532: %s: GetFirmwareVersion reply % x: want IC 0x32", l, r)
	}
	d.Firmware = Firmware{r[0], r[1], r[2], r[3]}
	// MaxRetries: MxRtyATR default FF, MxRtyPSL default 01, MxRtyPassiveActivation.
	if _, err := d.exchange(ctx, cmdRFConfiguration, []byte{0x05, 0xFF, 0x01, d.opt.PassiveRetries}, 0); err != nil {
		return nil, fmt.Errorf("pn532: %s: RFConfiguration MaxRetries: %w", l, err)
	}
	return d, nil
}

func (d *Dev) String() string { return "pn532(" + d.l.String() + ")" }

// exchange sends one command and returns the response parameters (after
// the response code cmd+1). A frame with a bad checksum is answered with a
// NACK once, asking the PN532 to send it again (UM §6.2.1.4).
func (d *Dev) exchange(ctx context.Context, cmd byte, params []byte, maxResp int) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, d.opt.Timeout)
	defer cancel()
	if err := d.l.writeFrame(buildFrame(cmd, params)); err != nil {
		return nil, err
	}
	raw, err := d.l.readFrame(ctx, len(ackFrame))
	if err != nil {
		return nil, err
	}
	kind, data, _, err := parseFrame(raw)
	switch {
	case err == nil && kind == kindACK:
	case errors.Is(err, badge.ErrBadFrame):
		// A damaged ACK (one byte lost on UART turns 00 00 FF 00 FF 00 into a LEN 0 frame):
		// the PN532 answered, so the command arrived; read the response. If it did not
		// arrive after all, the response read times out.
	case err == nil && kind == kindInfo && len(data) > 0 && data[0] == cmd+1:
		// The ACK was lost entirely and the response came first.
		return data[1:], nil
	case err != nil && !errors.Is(err, errIncomplete):
		return nil, err
	default:
		return nil, fmt.Errorf("%w: got % x", ErrNoACK, raw)
	}
	for attempt := 0; ; attempt++ {
		raw, err = d.l.readFrame(ctx, frameOver+1+maxResp)
		if err != nil {
			return nil, err
		}
		kind, data, _, err = parseFrame(raw)
		if errors.Is(err, errIncomplete) {
			// A fixed-length read (I²C, SPI) that ends inside the frame: LEN was damaged.
			err = fmt.Errorf("%w: frame truncated: % x", ErrMalformed, raw)
		}
		if errors.Is(err, badge.ErrBadFrame) && attempt == 0 {
			if werr := d.l.writeFrame(nackFrame); werr != nil {
				return nil, werr
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if kind != kindInfo || len(data) == 0 || data[0] != cmd+1 {
			return nil, fmt.Errorf("pn532: response to %#02x: % x", cmd, raw)
		}
		return data[1:], nil
	}
}

// Read implements badge.Reader: it searches for one ISO 14443A target at
// 106 kbps (InListPassiveTarget MaxTg=1 BrTy=0, UM §7.3.5) until one answers
// or ctx ends.
func (d *Dev) Read(ctx context.Context) (badge.Badge, error) {
	if d.justRead {
		d.justRead = false
		select {
		case <-d.opt.After(d.opt.Idle):
		case <-ctx.Done():
			return badge.Badge{}, ctx.Err()
		}
	}
	for {
		r, err := d.exchange(ctx, cmdInListPassiveTarget, []byte{0x01, 0x00}, maxTargetA)
		if err != nil {
			if ctx.Err() != nil {
				return badge.Badge{}, ctx.Err()
			}
			return badge.Badge{}, fmt.Errorf("pn532: %s: InListPassiveTarget: %w", d.l, err)
		}
		uid, err := parseTargetA(r)
		if err != nil {
			return badge.Badge{}, fmt.Errorf("pn532: %s: %w", d.l, err)
		}
		if uid != nil {
			d.justRead = true
			return badge.Badge{UID: uid, Tech: badge.TechISO14443A}, nil
		}
		select {
		case <-d.opt.After(d.opt.Idle):
		case <-ctx.Done():
			return badge.Badge{}, ctx.Err()
		}
	}
}

// parseTargetA decodes InListPassiveTarget's reply for 106 kbps type A
// (UM §7.3.5): NbTg, then Tg, SENS_RES(2), SEL_RES, NFCIDLength, NFCID1,
// [ATS]. No target gives a nil UID.
func parseTargetA(r []byte) ([]byte, error) {
	if len(r) == 0 {
		return nil, fmt.Errorf("InListPassiveTarget: empty reply: %w", badge.ErrBadFrame)
	}
	switch r[0] {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("InListPassiveTarget: NbTg %d with MaxTg 1: %w", r[0], badge.ErrBadFrame)
	}
	if len(r) < 6 {
		return nil, fmt.Errorf("InListPassiveTarget: target data % x too short: %w", r[1:], badge.ErrBadFrame)
	}
	n := int(r[5])
	if n != 4 && n != 7 && n != 10 {
		return nil, fmt.Errorf("InListPassiveTarget: NFCIDLength %d, want 4, 7 or 10: %w", n, badge.ErrBadFrame)
	}
	if len(r) < 6+n {
		return nil, fmt.Errorf("InListPassiveTarget: NFCID1 truncated at %d of %d bytes: %w", len(r)-6, n, badge.ErrBadFrame)
	}
	return slices.Clone(r[6 : 6+n]), nil
}

// Halt switches the RF field off (RFConfiguration CfgItem 1, UM §7.3.1).
func (d *Dev) Halt() error {
	_, err := d.exchange(context.Background(), cmdRFConfiguration, []byte{0x01, 0x00}, 0)
	if err != nil {
		return fmt.Errorf("pn532: %s: RF off: %w", d.l, err)
	}
	return nil
}
