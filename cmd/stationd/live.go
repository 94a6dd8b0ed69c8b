package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"labelstation/display"
	"labelstation/drivers/panel/rotate"
	"labelstation/drivers/printer"
	"labelstation/station/config"
)

// liveHardware keeps the parts opened at start in step with the station's effective config
// (station.Options.Apply), so a pushed fleet field takes effect without a restart: the
// printer's language and status dialect, the panel's turn, the reader's repeat window. The
// contrast and the rest follow the station's config directly.
type liveHardware struct {
	mu      sync.Mutex
	cur     config.Config
	printer *printer.Redialer
	turn    *rotate.Switch // nil: a panel that is not turned (sim, none)
	repeat  atomic.Int64   // badge.repeat_ms as a time.Duration
	log     *slog.Logger
}

func newLiveHardware(c config.Config, p *printer.Redialer, turn *rotate.Switch, log *slog.Logger) *liveHardware {
	h := &liveHardware{cur: c, printer: p, turn: turn, log: log}
	h.repeat.Store(int64(c.Badge.Repeat()))
	return h
}

// Repeat is the reader's current repeat window (badge.PumpOptions.RepeatNow).
func (h *liveHardware) Repeat() time.Duration { return time.Duration(h.repeat.Load()) }

// Apply brings the hardware to next. What can be refused is checked or tried first — the
// panel's size at the new turn, the printer's answer in the new language — and on a refusal
// nothing has changed; the error names the field.
func (h *liveHardware) Apply(ctx context.Context, next config.Config) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.cur
	turn := h.turn != nil && next.Display.Rotate != h.turn.Degrees()
	if turn {
		b, err := h.turn.BoundsAt(next.Display.Rotate)
		if err == nil {
			err = display.CheckSize(b.Size())
		}
		if err != nil {
			return &config.Error{Path: "display.rotate", Msg: fmt.Sprintf("%d: %v", next.Display.Rotate, err), Kind: config.ErrInvalid}
		}
	}
	if next.Printer.Lang != cur.Printer.Lang {
		if err := h.switchLang(ctx, cur.Printer.Lang, next.Printer.Lang); err != nil {
			return err
		}
	}
	if turn {
		if err := h.turn.Set(next.Display.Rotate); err != nil {
			return &config.Error{Path: "display.rotate", Msg: err.Error(), Kind: config.ErrInvalid}
		}
		h.log.Info("stationd: display turned", "rotate", next.Display.Rotate)
	}
	h.repeat.Store(int64(next.Badge.Repeat()))
	h.cur = next
	return nil
}

// switchLang speaks to the printer in to from now on, if it answers the status query in that
// language. If it does not, but still answers in from, the change broke the printer and is
// refused (from stays). If it answers in neither, the printer is away and the change is not to
// blame: to is kept.
func (h *liveHardware) switchLang(ctx context.Context, from, to string) error {
	answers := func() error {
		_, err := h.printer.Status(ctx)
		if errors.Is(err, printer.ErrUnsupported) {
			return nil // a language without a status query: nothing to try
		}
		return err
	}
	h.printer.SetLang(to)
	err := answers()
	if err == nil {
		h.log.Info("stationd: printer language changed", "from", from, "to", to)
		return nil
	}
	h.printer.SetLang(from)
	if oerr := answers(); oerr != nil {
		h.log.Warn("stationd: the printer answers in neither language; taking the new one", "from", from, "to", to, "err", err, "err_old", oerr)
		h.printer.SetLang(to)
		return nil
	}
	return &config.Error{Path: "printer.lang", Kind: config.ErrInvalid,
		Msg: fmt.Sprintf("%q: the printer does not answer its status query in it (%v); it answers in %q, which stays", to, err, from)}
}
