// Package boards opens the board the config names. It is separate from
// package board so that board stays free of host drivers.
package boards

import (
	"fmt"
	"maps"
	"slices"

	"labelstation/board"
	"labelstation/board/rpi"
	"labelstation/board/sim"
)

// Open returns the configured board: "sim" (inputs and outputs named as in
// the config, pins ignored) or "rpi".
func Open(c board.Config) (board.Board, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch c.Kind {
	case "sim":
		return sim.New(sim.Options{
			Serial:  c.Serial,
			Inputs:  slices.Sorted(maps.Keys(c.Inputs)),
			Outputs: slices.Sorted(maps.Keys(c.Outputs)),
		}), nil
	case "rpi":
		return rpi.Open(c)
	}
	return nil, fmt.Errorf("%w: board.kind %q", board.ErrUnknown, c.Kind)
}
