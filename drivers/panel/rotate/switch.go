package rotate

import (
	"fmt"
	"image"
	"image/color"
	"sync"

	"periph.io/x/conn/v3/display"
)

// Switch is a device turned by a rotation that can change while the station runs (a fleet
// push): Set swaps the turn at once, and the next Draw uses the new turn and its size. Base is
// the turn the device needs to show rotation 0 (an e-paper's portrait controller mounted
// landscape needs 90).
type Switch struct {
	mu      sync.Mutex
	dev     display.Drawer
	base    int
	degrees int
	cur     display.Drawer
}

var _ display.Drawer = (*Switch)(nil)

// NewSwitch wraps dev, turned by base+degrees.
func NewSwitch(dev display.Drawer, base, degrees int) (*Switch, error) {
	s := &Switch{dev: dev, base: base}
	if err := s.Set(degrees); err != nil {
		return nil, err
	}
	return s, nil
}

// BoundsAt returns the logical size the device has at degrees, without changing anything, so a
// caller can refuse a turn the screens cannot fill before it is made.
func (s *Switch) BoundsAt(degrees int) (image.Rectangle, error) {
	d, err := New(s.dev, (s.base+degrees)%360)
	if err != nil {
		return image.Rectangle{}, err
	}
	return d.Bounds(), nil
}

// Set turns the device by degrees (0, 90, 180, 270) from the next Draw on.
func (s *Switch) Set(degrees int) error {
	switch degrees {
	case 0, 90, 180, 270:
	default:
		return fmt.Errorf("rotate: %d degrees: want 0, 90, 180 or 270", degrees)
	}
	d, err := New(s.dev, (s.base+degrees)%360)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cur, s.degrees = d, degrees
	s.mu.Unlock()
	return nil
}

// Degrees is the current turn.
func (s *Switch) Degrees() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.degrees
}

func (s *Switch) current() display.Drawer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *Switch) String() string          { return s.current().String() }
func (s *Switch) ColorModel() color.Model { return s.dev.ColorModel() }
func (s *Switch) Halt() error             { return s.dev.Halt() }
func (s *Switch) Bounds() image.Rectangle { return s.current().Bounds() }

// Draw draws with the current turn.
func (s *Switch) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	return s.current().Draw(r, src, sp)
}

// SetContrast passes through to a device that can set its contrast.
func (s *Switch) SetContrast(level uint8) error {
	c, ok := s.dev.(interface{ SetContrast(uint8) error })
	if !ok {
		return fmt.Errorf("rotate: %s cannot set its contrast", s.dev)
	}
	return c.SetContrast(level)
}
