package parts

import (
	"labelstation/board"
	"labelstation/drivers/panel/rotate"
)

// OpenTurnablePanel opens a panel like OpenPanel, but turns it in software by a rotation that
// can change while it runs (rotate.Switch.Set), so a pushed display.rotate needs no restart. An
// SSD1306 is then turned by the CPU rather than by its controller's remap: a 128×64 frame is
// 8 KiB of copying.
func OpenTurnablePanel(kind string, o PanelOpts, b board.Board) (*rotate.Switch, error) {
	upright := o
	upright.Rotate = 0
	d, err := OpenPanel(kind, upright, b)
	if err != nil {
		return nil, err
	}
	s, err := rotate.NewSwitch(d, 0, o.Rotate)
	if err != nil {
		d.Halt()
		return nil, err
	}
	return s, nil
}
