package fakepi

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"strings"
	"testing"
	"time"

	"labelstation/board"
	"labelstation/drivers/badge"
	"labelstation/drivers/badge/pn532"
	"labelstation/drivers/panel/ssd1306"
)

func immediate(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func TestFakePiRunsRealDrivers(t *testing.T) {
	pi, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := pi.Serial(); s != "FAKEPI-0001" {
		t.Fatalf("serial %q", s)
	}
	ctx := t.Context()

	// Badge reader: our PN532 driver over the fake chip's I²C protocol.
	bus, err := pi.I2C("main")
	if err != nil {
		t.Fatal(err)
	}
	r, err := pn532.NewI2C(ctx, bus, pn532.Opts{After: immediate})
	if err != nil {
		t.Fatal(err)
	}
	pi.PN532.Present([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66})
	b, err := r.Read(ctx)
	if err != nil || b.Tech != badge.TechISO14443A || !bytes.Equal(b.UID, []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}) {
		t.Fatalf("badge %v, %v", b, err)
	}
	if err := r.Halt(); err != nil || pi.PN532.FieldOn() {
		t.Fatalf("Halt: %v, field on %v", err, pi.PN532.FieldOn())
	}

	// Display: the periph SSD1306 driver, GDDRAM kept by the fake chip.
	oled, err := ssd1306.NewI2C(bus, ssd1306.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, 128, 64))
	draw.Draw(img, image.Rect(10, 5, 30, 20), image.NewUniform(color.White), image.Point{}, draw.Src)
	if err := oled.Draw(oled.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	if got := pi.OLED.Frame(); !bytes.Equal(got.Pix, img.Pix) {
		t.Fatal("OLED frame differs from the drawn image")
	}
	img.SetGray(127, 63, color.Gray{Y: 255})
	if err := oled.Draw(oled.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	if got := pi.OLED.Frame(); !bytes.Equal(got.Pix, img.Pix) {
		t.Fatal("OLED frame differs after a partial update")
	}
	if err := oled.Halt(); err != nil || pi.OLED.On() {
		t.Fatalf("OLED Halt: %v, on %v", err, pi.OLED.On())
	}

	// Buttons and outputs.
	ok, err := pi.Input("ok")
	if err != nil {
		t.Fatal(err)
	}
	if err := pi.Press("ok"); err != nil {
		t.Fatal(err)
	}
	if p, err := ok.WaitPress(ctx); err != nil || p != (board.Press{Name: "ok"}) {
		t.Fatalf("got %+v, %v; want a short press of ok", p, err)
	}
	led, err := pi.Output("led")
	if err != nil {
		t.Fatal(err)
	}
	if err := led.Set(true); err != nil {
		t.Fatal(err)
	}
	if on, _ := pi.On("led"); !on {
		t.Fatal("led off after Set(true)")
	}
	dc, err := pi.GPIO("panel_dc")
	if err != nil || dc.Name() != "GPIO25" {
		t.Fatalf("panel_dc: %v, %v", dc, err)
	}
	if _, err := pi.GPIO("nope"); !errors.Is(err, board.ErrNoPin) {
		t.Fatalf("GPIO nope: %v", err)
	}
	if err := pi.Halt(); err != nil {
		t.Fatal(err)
	}
	if on, _ := pi.On("led"); on {
		t.Fatal("led on after Halt")
	}
}

func TestWireErrorsNameTheField(t *testing.T) {
	cfg := board.DefaultPi()
	cfg.Inputs["ok"] = board.PinConfig{Pin: "GPIO99"}
	_, err := New(Options{Config: cfg})
	if !errors.Is(err, board.ErrNoPin) || !strings.Contains(err.Error(), `board.inputs.ok.pin "GPIO99"`) {
		t.Fatalf("got %v", err)
	}
	cfg = board.DefaultPi()
	cfg.I2C["main"] = "7"
	_, err = New(Options{Config: cfg})
	if !errors.Is(err, board.ErrNoBus) || !strings.Contains(err.Error(), `board.i2c.main "7"`) {
		t.Fatalf("got %v", err)
	}
	cfg = board.DefaultPi()
	cfg.Outputs["led"] = board.PinConfig{Pin: "GPIO13", Active: "sideways"}
	if _, err = New(Options{Config: cfg}); err == nil || !strings.Contains(err.Error(), "board.outputs.led.active") {
		t.Fatalf("got %v", err)
	}
	cfg = board.Config{Kind: "rpi", GPIO: map[string]string{"mfrc522_irq": "GPIO40"}}
	if _, err = New(Options{Config: cfg}); !errors.Is(err, board.ErrNoPin) || !strings.Contains(err.Error(), `board.gpio.mfrc522_irq "GPIO40"`) {
		t.Fatalf("got %v", err)
	}
	cfg.Kind = "beaglebone"
	if _, err = New(Options{Config: cfg}); !errors.Is(err, board.ErrUnknown) {
		t.Fatalf("got %v", err)
	}
}

func TestBusNoDevice(t *testing.T) {
	b := NewBus("0", nil)
	if err := b.Tx(0x50, []byte{0}, nil); err == nil {
		t.Fatal("Tx to an empty address succeeded")
	}
}

// A button held on the fake Pi is reported long while still down, on the
// board's own clock; its release then reports nothing, and a quick press
// after it is short.
func TestFakePiLongPress(t *testing.T) {
	cfg := board.DefaultPi()
	cfg.LongPressMs = 40
	cfg.Inputs["ok"] = board.PinConfig{Pin: "GPIO5", DebounceMs: 5}
	pi, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer pi.Halt()
	ok, err := pi.Input("ok")
	if err != nil {
		t.Fatal(err)
	}
	if err := pi.Hold("ok"); err != nil {
		t.Fatal(err)
	}
	if p, err := ok.WaitPress(t.Context()); err != nil || p != (board.Press{Name: "ok", Long: true}) {
		t.Fatalf("held: got %+v, %v; want a long press of ok", p, err)
	}
	if err := pi.Release("ok"); err != nil {
		t.Fatal(err)
	}
	quiet, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if p, err := ok.WaitPress(quiet); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("release after a long press: got %+v, %v; want nothing", p, err)
	}
	if err := pi.Press("ok"); err != nil {
		t.Fatal(err)
	}
	if p, err := ok.WaitPress(t.Context()); err != nil || p != (board.Press{Name: "ok"}) {
		t.Fatalf("after release: got %+v, %v; want one short press of ok", p, err)
	}
}
