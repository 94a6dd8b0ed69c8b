//go:build nosim

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"labelstation/board"
	"labelstation/display"
	"labelstation/station/config"
)

// simParts is empty in a build without the simulated panel and printer.
type simParts struct{}

var errNoSim = errors.New("this build has no simulated panel or printer (built with the nosim tag); name a printer with --printer and use real hardware or a development build")

func (a *appliance) startSimPrinter(int) (string, error) { return "", errNoSim }

func (a *appliance) startSimPanel(context.Context, config.Config, flags, func(board.Press), []string, *slog.Logger) (display.Panel, error) {
	return nil, fmt.Errorf("display: %w", errNoSim)
}
