package displaytest

import (
	"context"
	"errors"
	"image"
	"slices"
	"testing"
	"time"

	"labelstation/display"
)

func TestViewsCoverEveryKind(t *testing.T) {
	vs := Views(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	kinds := display.Kinds()
	if len(vs) != len(kinds) {
		t.Fatalf("%d views for %d kinds", len(vs), len(kinds))
	}
	for i, v := range vs {
		if v.Kind != kinds[i] {
			t.Errorf("view %d is %v, want %v", i, v.Kind, kinds[i])
		}
	}
}

func TestPanel(t *testing.T) {
	p := New(image.Pt(128, 64))
	img, err := display.Render(Views(time.Time{})[display.Idle], p.Bounds().Size())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go p.Show(img)
	n, got, err := p.WaitFrame(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("WaitFrame = %d, %v", n, err)
	}
	img.Pix[0] ^= 0xff // the panel must have kept its own copy
	if g := got.(*image.Gray); slices.Equal(g.Pix, img.Pix) {
		t.Error("panel shares the caller's pixels")
	}
	if err := p.Show(image.NewGray(image.Rect(0, 0, 1, 1))); err == nil {
		t.Error("a 1x1 frame was accepted by a 128x64 panel")
	}
	if err := p.Halt(); err != nil || !p.Halted() {
		t.Errorf("Halt = %v, Halted = %v", err, p.Halted())
	}
	if len(p.Frames()) != 1 {
		t.Errorf("%d frames recorded, want 1", len(p.Frames()))
	}
	c, stop := context.WithCancel(context.Background())
	stop()
	if _, _, err := p.WaitFrame(c, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled WaitFrame: %v", err)
	}
}
