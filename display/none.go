package display

import "image"

// None is the panel of a station built without a display (a printer-only kiosk): it accepts
// every frame and shows nothing, so the station runs unchanged.
func None(size image.Point) Panel { return nonePanel{size} }

type nonePanel struct{ size image.Point }

var _ Panel = nonePanel{}

func (n nonePanel) Bounds() image.Rectangle { return image.Rectangle{Max: n.size} }
func (nonePanel) Show(image.Image) error    { return nil }
func (nonePanel) Halt() error               { return nil }
func (nonePanel) String() string            { return "none" }
