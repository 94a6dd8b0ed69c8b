package fakepi

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// Device is one chip on a fake I²C bus: it sees each transaction addressed
// to it.
type Device interface {
	Tx(w, r []byte) error
}

// Bus is an I²C bus with fake chips at fixed addresses. A transaction to an
// empty address fails, as an unacknowledged address does on a real bus.
type Bus struct {
	name string
	mu   sync.Mutex
	devs map[uint16]Device
}

var _ i2c.BusCloser = (*Bus)(nil)

// NewBus returns a bus with devs by 7-bit address.
func NewBus(name string, devs map[uint16]Device) *Bus {
	return &Bus{name: name, devs: devs}
}

func (b *Bus) String() string { return "fakepi-i2c" + b.name }

// Tx implements i2c.Bus; transactions are serialised like on the wire.
func (b *Bus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.devs[addr]
	if !ok {
		return fmt.Errorf("fakepi: %s: no device at %#02x (address NACK)", b, addr)
	}
	return d.Tx(w, r)
}

func (b *Bus) SetSpeed(physic.Frequency) error { return nil }
func (b *Bus) Close() error                    { return nil }
