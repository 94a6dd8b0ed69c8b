package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"maps"
	"slices"

	"labelstation/board"
	"labelstation/board/boards"
	"labelstation/board/fakepi"
	boardsim "labelstation/board/sim"
	"labelstation/display"
	"labelstation/drivers/badge"
	"labelstation/drivers/panel/rotate"
	"labelstation/drivers/parts"
	"labelstation/station"
	"labelstation/station/config"
)

// openBoard opens the configured board and returns the names of its buttons.
func openBoard(c config.Board) (board.Board, []string, error) {
	switch c.Kind {
	case "sim":
		names := []string{"A", "B"}
		return boardsim.New(boardsim.Options{Serial: c.Serial, Inputs: names, Outputs: []string{"led", "buzzer"}}), names, nil
	case "fakepi":
		// A Raspberry Pi assembled from periph's test doubles (gpiotest pins, a PN532 and an
		// SSD1306 on a fake I²C bus): the hardware code paths of a Pi, on any machine.
		bc := c.BoardConfig()
		bc.Kind = "rpi"
		pi, err := fakepi.New(fakepi.Options{Config: bc})
		if err != nil {
			return nil, nil, err
		}
		return pi, slices.Sorted(maps.Keys(bc.Inputs)), nil
	default:
		bc := c.BoardConfig()
		b, err := boards.Open(bc)
		if err != nil {
			return nil, nil, err
		}
		return b, slices.Sorted(maps.Keys(bc.Inputs)), nil
	}
}

// openPanel opens a hardware panel, turned in software so a pushed display.rotate applies
// live (the returned switch; nil for display.kind none). The sim panel is built by the caller,
// which also serves it.
func openPanel(c config.Display, b board.Board) (display.Panel, *rotate.Switch, error) {
	if c.Kind == "none" {
		return display.None(image.Pt(c.Width, c.Height)), nil, nil
	}
	d, err := parts.OpenTurnablePanel(c.Kind, parts.PanelOpts{Width: c.Width, Height: c.Height, Rotate: c.Rotate, Contrast: c.Contrast, Bus: c.Bus, Model: c.Model}, b)
	if err != nil {
		return nil, nil, err
	}
	// A panel the screens cannot fill (a 128x32 OLED) is refused here
	// with its size, rather than starting a station whose screen stays blank.
	if err := display.CheckSize(d.Bounds().Size()); err != nil {
		d.Halt()
		return nil, nil, fmt.Errorf("%s (display.kind %s, display.rotate %d): %w", d, c.Kind, c.Rotate, err)
	}
	return display.OnDrawer(d), d, nil
}

// openReader opens a hardware badge reader and returns it with the function that opens it
// again after a failure.
func openReader(ctx context.Context, c config.Badge, b board.Board) (badge.Reader, func(context.Context) (badge.Reader, error), error) {
	open := func(ctx context.Context) (badge.Reader, error) {
		r, err := parts.OpenReader(ctx, c.Reader, c.Device, b)
		if err != nil {
			return nil, fmt.Errorf("badge reader %s: %w", c.Reader, err)
		}
		return r, nil
	}
	r, err := open(ctx)
	if err != nil {
		return nil, nil, err
	}
	return r, open, nil
}

// superviseReader pumps the reader's debounced taps into out for as long as ctx lasts,
// reopening it with backoff when it fails; health hears when it keeps failing (err) and when it
// works again (nil); pump sets the repeat window (asked at every card), the move-ons and the clock. The returned closer stops the reader and waits for it.
func superviseReader(ctx context.Context, r badge.Reader, reopen func(context.Context) (badge.Reader, error), out chan<- badge.Badge, pump badge.PumpOptions, health func(error), log *slog.Logger) func() error {
	ctx, cancel := context.WithCancel(ctx)
	pump.OnBadFrame = func(err error) { log.Debug("stationd: badge frame skipped", "err", err) }
	done := make(chan error, 1)
	go func() {
		err := badge.Supervise(ctx, r, out, badge.SuperviseOptions{
			Pump:      pump,
			Open:      reopen,
			OnFault:   health,
			OnRecover: func() { health(nil) },
			Log:       log,
		})
		if ctx.Err() == nil {
			// Only a reader halted behind the supervisor's back ends it early.
			log.Error("stationd: badge reader stopped", "err", err)
			health(err)
		}
		done <- err
	}()
	return func() error {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
}

// signals drives the board's "led" and "buzzer" outputs where it has them.
func signals(ctx context.Context, b board.Board) *station.BoardSignals {
	led, _ := b.Output("led")
	buzzer, _ := b.Output("buzzer")
	return &station.BoardSignals{LED: led, Buzzer: buzzer, Ctx: ctx}
}
