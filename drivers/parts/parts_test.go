package parts

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"strings"
	"testing"

	"labelstation/board"
	"labelstation/board/fakepi"
	"labelstation/board/sim"
)

func TestOnFakePi(t *testing.T) {
	pi, err := fakepi.New(fakepi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pi.Halt()
	ctx := t.Context()
	r, err := OpenReader(ctx, "pn532-i2c", "", pi)
	if err != nil {
		t.Fatal(err)
	}
	pi.PN532.Present([]byte{1, 2, 3, 4})
	b, err := r.Read(ctx)
	if err != nil || !bytes.Equal(b.UID, []byte{1, 2, 3, 4}) {
		t.Fatalf("badge %v, %v", b, err)
	}
	p, err := OpenPanel("ssd1306", PanelOpts{Width: 128, Height: 64, Rotate: 180, Contrast: 80}, pi)
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(p.Bounds())
	img.SetGray(3, 3, color.Gray{Y: 255})
	if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	if pi.OLED.Frame().GrayAt(3, 3).Y != 255 {
		t.Fatal("pixel not on the OLED")
	}
	// A quarter turn is done in software: the panel is 64×128 to the screens.
	p, err = OpenPanel("ssd1306", PanelOpts{Width: 128, Height: 64, Rotate: 90}, pi)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Bounds().Size(); got != image.Pt(64, 128) {
		t.Fatalf("rotated 90: bounds %v, want 64x128", got)
	}
}

func TestErrors(t *testing.T) {
	ctx := t.Context()
	s := sim.New(sim.Options{})
	tests := []struct {
		err  error
		want string
	}{
		{func() error { _, err := OpenReader(ctx, "pn532-i2c", "", s); return err }(), "no such bus"},
		{func() error { _, err := OpenReader(ctx, "mfrc522", "", s); return err }(), "no such bus"},
		{func() error { _, err := OpenReader(ctx, "wedge", "", s); return err }(), "badge.device must name"},
		{func() error { _, err := OpenReader(ctx, "acr122", "", s); return err }(), `badge.reader "acr122"`},
		{func() error { _, err := OpenPanel("ssd1306", PanelOpts{Bus: "can"}, s); return err }(), `display.bus "can"`},
		{func() error { _, err := OpenPanel("ssd1306", PanelOpts{Bus: "spi"}, s); return err }(), "no such bus"},
		{func() error { _, err := OpenPanel("epaper", PanelOpts{}, s); return err }(), "no such bus"},
		{func() error { _, err := OpenPanel("lcd", PanelOpts{}, s); return err }(), `display.kind "lcd"`},
	}
	for i, tt := range tests {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%d: got %v, want %q", i, tt.err, tt.want)
		}
	}
	if _, err := OpenReader(ctx, "pn532-i2c", "", s); !errors.Is(err, board.ErrNoBus) {
		t.Errorf("want ErrNoBus, got %v", err)
	}
	r, err := OpenReader(ctx, "sim", "", s)
	if err != nil || r.String() != "sim(sim)" {
		t.Errorf("sim reader %v, %v", r, err)
	}
}
