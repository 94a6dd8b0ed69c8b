package epaper

import (
	"fmt"
	"image"
	"image/color"
	"slices"
	"testing"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// busLog is an SPI port that keeps every transfer with the level of the
// D/C# pin at that moment: low is a command byte, high its parameters
// (SSD1675/SSD1680 4-wire SPI, datasheet §6).
type busLog struct {
	dc  *gpiotest.Pin
	txs []busTx
}

type busTx struct {
	data bool
	w    []byte
}

type busConn struct{ b *busLog }

var (
	_ spi.Port = (*busLog)(nil)
	_ spi.Conn = busConn{}
)

func (b *busLog) String() string { return "buslog" }
func (b *busLog) Connect(physic.Frequency, spi.Mode, int) (spi.Conn, error) {
	return busConn{b}, nil
}
func (b *busLog) LimitSpeed(physic.Frequency) error { return nil }

func (c busConn) String() string               { return "buslog" }
func (c busConn) Duplex() conn.Duplex          { return conn.Half }
func (c busConn) TxPackets([]spi.Packet) error { return fmt.Errorf("buslog: packets not expected") }
func (c busConn) Tx(w, r []byte) error {
	c.b.txs = append(c.b.txs, busTx{data: c.b.dc.Read() == gpio.High, w: slices.Clone(w)})
	return nil
}

// refreshes reads the refreshes the controller was told to run: each
// Master Activation (0x20) preceded by Display Update Control 1 (0x21) is
// one, partial when 0x21's parameter selects the RAM of the previous
// frame (bit 7, which periph's V2 and V3 drivers set in partial mode), full
// when it does not. The VCOM register (0x2C) written with the mode, 0x24
// partial or 0x55 full, must agree.
func refreshes(t *testing.T, txs []busTx) []string {
	t.Helper()
	var out []string
	var cmd byte
	ctl1, vcom := -1, -1
	for _, tx := range txs {
		if !tx.data {
			if len(tx.w) != 1 {
				t.Fatalf("command transfer of %d bytes", len(tx.w))
			}
			cmd = tx.w[0]
			if cmd == 0x20 && ctl1 >= 0 {
				kind := "full"
				if ctl1&0x80 != 0 {
					kind = "partial"
				}
				if want := map[string]int{"full": 0x55, "partial": 0x24}[kind]; vcom != want {
					t.Errorf("refresh %d (%s) with VCOM %#x, want %#x", len(out), kind, vcom, want)
				}
				out = append(out, kind)
				ctl1 = -1
			}
			continue
		}
		switch cmd {
		case 0x21:
			ctl1 = int(tx.w[0])
		case 0x2C:
			vcom = int(tx.w[0])
		}
	}
	return out
}

// On the 2.13" V2 and V3, through periph's drivers down to the bus: the
// first frame is a full refresh, then MaxPartial partial refreshes, then
// one full refresh (once MinFullInterval has passed), and so on; clearing
// at Halt is a full refresh.
func TestPartialThenFullOnTheBus(t *testing.T) {
	for _, model := range []string{"2in13v2", "2in13v3"} {
		t.Run(model, func(t *testing.T) {
			dc := &gpiotest.Pin{N: "GPIO25"}
			bus := &busLog{dc: dc}
			cs := &gpiotest.Pin{N: "GPIO8"}
			rst := &gpiotest.Pin{N: "GPIO17"}
			busy := &gpiotest.Pin{N: "GPIO24", EdgesChan: make(chan gpio.Level)} // low: idle
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			const n = 3
			p, err := Open(bus, dc, cs, rst, busy, Opts{Model: model, MaxPartial: n, MinFullInterval: time.Minute,
				Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			opened := len(bus.txs) // periph's V3 Init clears the panel with a full refresh of its own
			img := image.NewGray(p.Bounds())
			for i := range 2*(n+1) + 1 {
				for j := range img.Pix {
					img.Pix[j] = 255
				}
				img.SetGray(i, 0, color.Gray{}) // a new frame each time
				now = now.Add(30 * time.Second) // n partials take longer than MinFullInterval
				if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil { // unchanged: no refresh
				t.Fatal(err)
			}
			if err := p.Halt(); err != nil {
				t.Fatal(err)
			}
			want := []string{"full", "partial", "partial", "partial", "full", "partial", "partial", "partial", "full", "full"}
			if got := refreshes(t, bus.txs[opened:]); !slices.Equal(got, want) {
				t.Errorf("refreshes on the bus:\n got %v\nwant %v", got, want)
			}
		})
	}
}
