//go:build !nosim

package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"labelstation/board"
	"labelstation/display"
	displaysim "labelstation/display/sim"
	"labelstation/drivers/badge"
	"labelstation/drivers/printer/simprinter"
	"labelstation/station/config"
)

// simParts are the simulated panel and printer of --sim, which tests reach into. Release builds
// (tag nosim) leave them out: their web page's templates alone keep megabytes of reflection
// data in the binary.
type simParts struct {
	Panel      *displaysim.Panel
	SimPrinter *simprinter.Server
}

// startSimPrinter starts a simulated ZPL printer on loopback that keeps its labels as PNG in
// a.PrinterDir, and returns its URL.
func (a *appliance) startSimPrinter(dpi int) (string, error) {
	sp, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{Dir: a.PrinterDir, DPI: dpi})
	if err != nil {
		return "", fmt.Errorf("simprinter: %w", err)
	}
	a.SimPrinter = sp
	a.closers = append(a.closers, sp.Close)
	return sp.URL(), nil
}

// startSimPanel builds the simulated panel and its web page, where a person sees the screen,
// taps demo badges and presses the buttons.
func (a *appliance) startSimPanel(ctx context.Context, cfg config.Config, f flags, press func(board.Press), names []string, log *slog.Logger) (display.Panel, error) {
	demo, err := parseDemoBadges(f.Demo)
	if err != nil {
		return nil, fmt.Errorf("--demo-badges: %w", err)
	}
	panel, err := displaysim.New(displaysim.Options{Dir: filepath.Join(cfg.Station.StateDir, "display"), Keep: 1000, Size: image2(cfg.Display.Width, cfg.Display.Height), Badges: demo, Buttons: names,
		LongPress: cfg.Board.BoardConfig().LongPress()})
	if err != nil {
		return nil, fmt.Errorf("display: %w", err)
	}
	a.Panel = panel
	if cfg.Badge.Reader == "sim" {
		reader := badge.NewSim("web")
		a.Reader = reader
		a.closers = append(a.closers, reader.Halt)
	}
	if f.Web == "" {
		return panel, nil
	}
	ln, err := net.Listen("tcp", f.Web)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s is already in use; choose another address with --web", f.Web)
		}
		return nil, fmt.Errorf("--web: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: panel.Handler(
		func(uid []byte) {
			if a.Reader == nil {
				log.Warn("stationd: web tap ignored: the badge reader is hardware")
				return
			}
			tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := a.Reader.Tap(tctx, uid); err != nil {
				log.Warn("stationd: tap not taken", "err", err)
			}
		},
		press)}
	go srv.Serve(ln)
	a.closers = append(a.closers, srv.Close)
	a.WebURL = "http://" + ln.Addr().String()
	return panel, nil
}

func parseDemoBadges(s string) ([]displaysim.Badge, error) {
	var out []displaysim.Badge
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		name, uidHex, ok := strings.Cut(item, "=")
		uid, err := hex.DecodeString(uidHex)
		if !ok || err != nil || len(uid) == 0 {
			return nil, fmt.Errorf("%q: want NAME=UIDHEX", item)
		}
		out = append(out, displaysim.Badge{Name: name, UID: uid})
	}
	return out, nil
}
