package mfrc522

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/spi/spitest"

	"labelstation/drivers/badge"
)

// SPI framing, NXP MFRC522 datasheet §8.1.2.3: the first byte is the
// address byte, bit 7 = 1 read / 0 write, bits 6..1 the register, bit 0 = 0.
// Registers (§9.2): Command 01, ComIEn 02, ComIrq 04, DivIrq 05, Error 06,
// Status2 08, FIFOData 09, FIFOLevel 0A, Control 0C, BitFraming 0D, Mode 11,
// TxControl 14, TxASK 15, CRCResultM 21, CRCResultL 22, RFCfg 26, TMode 2A,
// TPrescaler 2B, TReloadH 2C, TReloadL 2D.
func w(reg, v byte) conntest.IO { return conntest.IO{W: []byte{reg << 1 & 0x7E, v}} }
func r(reg, v byte) conntest.IO {
	return conntest.IO{W: []byte{reg<<1&0x7E | 0x80, 0x00}, R: []byte{0x00, v}}
}

// chipInit is periph's Init: SoftReset (command 0F, §10.3.1.10); timer
// auto-start, prescaler 0xD3E, reload 30 (§9.3.3.10); TxASK Force100ASK
// 40; Mode 3D (CRC preset 6363, §9.3.2.2); RxGain 4 = 38 dB; antenna on:
// read TxControl (reset value 80, §9.3.2.5) to check it is off, read it
// again and set Tx1RFEn|Tx2RFEn.
func chipInit() []conntest.IO {
	return []conntest.IO{
		w(0x01, 0x0F),
		w(0x2A, 0x8D), w(0x2B, 0x3E), w(0x2D, 30), w(0x2C, 0x00), w(0x15, 0x40), w(0x11, 0x3D),
		w(0x26, 0x40),
		r(0x14, 0x80), r(0x14, 0x80), w(0x14, 0x83),
	}
}

// transceive is periph's CardWrite(Transceive): enable IRQs (ComIEn F7),
// clear Set1 in ComIrq (reads the reset value 14), flush the FIFO
// (FIFOLevel bit 7), Idle, load the FIFO, command Transceive (0C), StartSend
// (BitFraming bit 7, on top of framing bf); ComIrq shows RxIRq|IdleIRq (30);
// StartSend off; no Error; FIFOLevel = len(reply); Control RxLastBits 0
// (whole bytes); read the FIFO.
func transceive(bf byte, send, reply []byte) []conntest.IO {
	ops := []conntest.IO{w(0x02, 0xF7), r(0x04, 0x14), w(0x04, 0x14), r(0x0A, 0x00), w(0x0A, 0x80), w(0x01, 0x00)}
	for _, b := range send {
		ops = append(ops, w(0x09, b))
	}
	ops = append(ops, w(0x01, 0x0C), r(0x0D, bf), w(0x0D, bf|0x80), r(0x04, 0x30), r(0x0D, bf|0x80), w(0x0D, bf),
		r(0x06, 0x00), r(0x0A, byte(len(reply))), r(0x0C, 0x10))
	for _, b := range reply {
		ops = append(ops, r(0x09, b))
	}
	return ops
}

// A MIFARE Classic 1K with UID DE AD BE EF (ISO/IEC 14443-3):
//
//	REQA 26 (7 bits, BitFraming 07)      -> ATQA 04 00
//	ANTICOLLISION CL1 93 20              -> DE AD BE EF, BCC = XOR = 22
//	SELECT 93 70 DE AD BE EF 22 + CRC_A  -> SAK 08 + CRC_A B6 DD
//
// CRC_A (ISO 14443-3 Annex B, preset 6363) of 93 70 DE AD BE EF 22 is 9CB9,
// sent LSB first; the MFRC522 computes it (CalcCRC 03, DivIrq CRCIRq 04,
// CRCResultL then M).
func readUID() []conntest.IO {
	var ops []conntest.IO
	// WaitForEdge: init, ComIrq clear, ComIEn IRqInv|RxIEn (A0), then a REQA
	// is loaded and sent (FIFO 26, Transceive, BitFraming 87) so that a card
	// pulls IRQ low.
	ops = append(ops, chipInit()...)
	ops = append(ops, w(0x04, 0x00), w(0x02, 0xA0), w(0x09, 0x26), w(0x01, 0x0C), w(0x0D, 0x87))
	// selectCard re-initialises, then REQA, anticollision, select.
	ops = append(ops, chipInit()...)
	ops = append(ops, w(0x0D, 0x07))
	ops = append(ops, transceive(0x07, []byte{0x26}, []byte{0x04, 0x00})...)
	ops = append(ops, w(0x0D, 0x00))
	ops = append(ops, transceive(0x00, []byte{0x93, 0x20}, []byte{0xDE, 0xAD, 0xBE, 0xEF, 0x22})...)
	ops = append(ops, r(0x05, 0x00), w(0x05, 0x00), r(0x0A, 0x00), w(0x0A, 0x80))
	for _, b := range []byte{0x93, 0x70, 0xDE, 0xAD, 0xBE, 0xEF, 0x22} {
		ops = append(ops, w(0x09, b))
	}
	ops = append(ops, w(0x01, 0x03), r(0x05, 0x04), r(0x22, 0xB9), r(0x21, 0x9C))
	ops = append(ops, transceive(0x00, []byte{0x93, 0x70, 0xDE, 0xAD, 0xBE, 0xEF, 0x22, 0xB9, 0x9C}, []byte{0x08, 0xB6, 0xDD})...)
	// StopCrypto: clear MFCrypto1On in Status2.
	ops = append(ops, r(0x08, 0x00), w(0x08, 0x00))
	return ops
}

func TestReadUIDPlayback(t *testing.T) {
	ops := chipInit()
	ops = append(ops, readUID()...)
	ops = append(ops, w(0x01, 0x10)) // Halt: PowerDown
	port := &spitest.Playback{Playback: conntest.Playback{Ops: ops, DontPanic: true}}
	rst := &gpiotest.Pin{N: "GPIO22"}
	irq := &gpiotest.Pin{N: "GPIO23", EdgesChan: make(chan gpio.Level, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var waits []time.Duration
	after := func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		cancel()
		return nil
	}
	d, err := New(port, rst, irq, Opts{After: after})
	if err != nil {
		t.Fatal(err)
	}
	if rst.Read() != gpio.High {
		t.Fatal("reset line held low")
	}
	irq.EdgesChan <- gpio.Low // the card answered the REQA
	b, err := d.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b.Tech != badge.TechISO14443A || !bytes.Equal(b.UID, []byte{0xDE, 0xAD, 0xBE, 0xEF}) {
		t.Fatalf("badge %v", b)
	}
	// The next search first waits Idle (cancelled here): no bus traffic.
	if _, err := d.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("second Read: %v", err)
	}
	if len(waits) != 1 || waits[0] != 50*time.Millisecond {
		t.Fatalf("waits %v", waits)
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBadGain(t *testing.T) {
	if _, err := New(nil, nil, nil, Opts{Gain: 9}); err == nil {
		t.Fatal("gain 9 accepted")
	}
}
