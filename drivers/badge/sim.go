package badge

import (
	"context"
	"slices"
	"sync"
)

// Sim is the development and test reader: Tap presents a card. It is the
// fake beside Reader.
type Sim struct {
	name   string
	taps   chan Badge
	halted chan struct{}
	once   sync.Once
}

var _ Reader = (*Sim)(nil)

// NewSim returns a sim reader named name for logs.
func NewSim(name string) *Sim {
	return &Sim{name: name, taps: make(chan Badge), halted: make(chan struct{})}
}

// Tap presents a card with uid; it blocks until a Read takes it or ctx ends.
func (s *Sim) Tap(ctx context.Context, uid []byte) error {
	select {
	case s.taps <- Badge{UID: slices.Clone(uid), Tech: TechSim}:
		return nil
	case <-s.halted:
		return ErrHalted
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Read implements Reader.
func (s *Sim) Read(ctx context.Context) (Badge, error) {
	select {
	case b := <-s.taps:
		return b, nil
	case <-s.halted:
		return Badge{}, ErrHalted
	case <-ctx.Done():
		return Badge{}, ctx.Err()
	}
}

func (s *Sim) String() string { return "sim(" + s.name + ")" }

// Halt makes pending and future Reads return ErrHalted.
func (s *Sim) Halt() error {
	s.once.Do(func() { close(s.halted) })
	return nil
}
