package display

import (
	"fmt"
	"image"
)

// Drawer is what periph.io panel drivers offer (conn/v3/display.Drawer,
// e.g. devices/v3/ssd1306 and the e-paper drivers): Draw copies src into
// the region r of the panel. Declared here so display does not import
// periph.
type Drawer interface {
	Bounds() image.Rectangle
	Draw(r image.Rectangle, src image.Image, sp image.Point) error
	Halt() error
	String() string
}

// OnDrawer returns a Panel that shows each frame by drawing it whole onto d.
func OnDrawer(d Drawer) Panel { return drawerPanel{d} }

type drawerPanel struct{ d Drawer }

var (
	_ Panel      = drawerPanel{}
	_ Contraster = drawerPanel{}
)

// SetContrast sets the panel's brightness when its driver can.
func (p drawerPanel) SetContrast(level uint8) error {
	c, ok := p.d.(Contraster)
	if !ok {
		return fmt.Errorf("display: %s cannot set its contrast", p.d)
	}
	return c.SetContrast(level)
}

func (p drawerPanel) Bounds() image.Rectangle { return p.d.Bounds() }
func (p drawerPanel) Halt() error             { return p.d.Halt() }
func (p drawerPanel) String() string          { return p.d.String() }

// Show refuses a frame of another size: scaling would blur 1-bit text and
// QR modules, so the frame must be rendered for this panel.
func (p drawerPanel) Show(img image.Image) error {
	b := p.d.Bounds()
	if img.Bounds().Size() != b.Size() {
		return fmt.Errorf("display: frame %dx%d does not match %s (%dx%d)",
			img.Bounds().Dx(), img.Bounds().Dy(), p.d, b.Dx(), b.Dy())
	}
	if err := p.d.Draw(b, img, img.Bounds().Min); err != nil {
		return fmt.Errorf("display: %s: %w", p.d, err)
	}
	return nil
}
