// Package displaytest has a recording fake of display.Panel and a sample
// View of every screen kind, for tests and screenshot generators.
package displaytest

import (
	"context"
	"fmt"
	"image"
	"image/draw"
	"sync"
	"time"

	"labelstation/display"
)

// Panel records every frame shown, in memory.
type Panel struct {
	size image.Point

	mu      sync.Mutex
	frames  []image.Image
	halted  bool
	changed chan struct{} // closed and replaced on every Show
}

var _ display.Panel = (*Panel)(nil)

// New returns a fake panel of the given size.
func New(size image.Point) *Panel {
	return &Panel{size: size, changed: make(chan struct{})}
}

// Bounds implements display.Panel.
func (p *Panel) Bounds() image.Rectangle { return image.Rectangle{Max: p.size} }

// Show records a copy of img; a frame of the wrong size is an error, as it
// would be for a real driver.
func (p *Panel) Show(img image.Image) error {
	if img.Bounds().Size() != p.size {
		return fmt.Errorf("displaytest: frame %v does not match panel %v", img.Bounds().Size(), p.size)
	}
	c := image.NewGray(p.Bounds())
	draw.Draw(c, c.Rect, img, img.Bounds().Min, draw.Src)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frames = append(p.frames, c)
	p.halted = false
	close(p.changed)
	p.changed = make(chan struct{})
	return nil
}

// Halt implements display.Panel; Halted reports it.
func (p *Panel) Halt() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.halted = true
	return nil
}

// Halted reports whether Halt was called after the last Show.
func (p *Panel) Halted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.halted
}

func (p *Panel) String() string { return fmt.Sprintf("displaytest(%dx%d)", p.size.X, p.size.Y) }

// Frames returns the frames shown so far, oldest first.
func (p *Panel) Frames() []image.Image {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]image.Image(nil), p.frames...)
}

// WaitFrame waits until more than after frames were shown and returns the
// count and the newest frame.
func (p *Panel) WaitFrame(ctx context.Context, after int) (int, image.Image, error) {
	for {
		p.mu.Lock()
		n, ch := len(p.frames), p.changed
		var last image.Image
		if n > 0 {
			last = p.frames[n-1]
		}
		p.mu.Unlock()
		if n > after {
			return n, last, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return n, nil, fmt.Errorf("displaytest: waiting for frame %d: %w", after+1, ctx.Err())
		}
	}
}

// Views returns one realistic View per display.Kind, in Kind order, as the
// station would derive them at time now.
func Views(now time.Time) []display.View {
	const station = "LS-0042"
	vs := []display.View{
		{Kind: display.Boot, Station: station, Now: now},
		{Kind: display.Enrolling, QR: "http://10.0.0.2:8780/pair?user_code=WDJB-MJHT",
			Code: "WDJB-MJHT", URL: "http://10.0.0.2:8780/pair", Expires: now.Add(5 * time.Minute), Now: now},
		{Kind: display.Denied, Now: now},
		{Kind: display.Connecting, Station: station, Now: now},
		{Kind: display.Idle, Station: station, Online: true, Now: now},
		{Kind: display.Offline, Station: station, Now: now},
		{Kind: display.Lookup, User: "Ann", Station: station, Online: true, Now: now},
		{Kind: display.UnknownBadge, Station: station, Online: true, Now: now},
		{Kind: display.List, User: "Ann Müller", Station: station, Online: true, Now: now, Jobs: []display.JobLine{
			{Title: "Shipping labels", Labels: 3}, {Title: "Shelf tags aisle 4", Labels: 12},
			{Title: "Asset tags", Labels: 1}, {Title: "Returns", Labels: 2}}},
		{Kind: display.NoJobs, User: "Ann", Station: station, Online: true, Now: now},
		{Kind: display.Printing, User: "Ann", Done: 1, Total: 3, Lines: []string{"Shipping labels"}, Station: station, Online: true, Now: now},
		{Kind: display.Paused, Title: "Paper out", Lines: []string{"Load labels, close the lid.", "Your jobs wait."}, Done: 1, Total: 3, Station: station, Online: true, Now: now},
		{Kind: display.Done, User: "Ann", Done: 3, Total: 3, Station: station, Online: true, Now: now},
		{Kind: display.Error, Lines: []string{"Printer not reachable at 10.0.0.7:9100"}, Station: station, Online: true, Now: now},
		{Kind: display.Select, Title: "Shelf tags aisle 4", Lines: []string{"x12, 25m old", "7h 35m left", "A next  B print"}, Station: station, Online: true, Now: now},
		{Kind: display.Preview, Title: "Shelf tags aisle 4", Image: bars(), Station: station, Online: true, Now: now},
	}
	return vs
}

// bars is a label-sized picture of a frame and bars of several widths, for the preview.
func bars() *image.Gray {
	img := image.NewGray(image.Rect(0, 0, 400, 200))
	for y := range 200 {
		for x := range 400 {
			ink := x < 4 || x >= 396 || y < 4 || y >= 196 || (y > 60 && y < 170 && x > 40 && x < 360 && (x/4)%3 != 0)
			if !ink {
				img.Pix[y*img.Stride+x] = 0xff
			}
		}
	}
	return img
}
