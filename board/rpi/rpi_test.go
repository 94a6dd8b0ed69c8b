package rpi

import (
	"errors"
	"runtime"
	"testing"
	"testing/fstest"

	"labelstation/board"
)

func TestSerial(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
		want string
		err  error
	}{
		{"device tree", fstest.MapFS{"proc/device-tree/serial-number": {Data: []byte("10000000a1b2c3d4\x00")}}, "10000000a1b2c3d4", nil},
		{"cpuinfo", fstest.MapFS{"proc/cpuinfo": {Data: []byte("processor\t: 0\nHardware\t: BCM2835\nRevision\t: a02082\nSerial\t\t: 00000000deadbeef\nModel\t\t: Raspberry Pi 3 Model B Rev 1.2\n")}}, "00000000deadbeef", nil},
		{"zeros", fstest.MapFS{"proc/cpuinfo": {Data: []byte("Serial\t\t: 0000000000000000\n")}}, "", board.ErrNoSerial},
		{"absent", fstest.MapFS{}, "", board.ErrNoSerial},
		{"machine-id fallback", fstest.MapFS{"proc/cpuinfo": {Data: []byte("Serial\t\t: 0000000000000000\n")}, "etc/machine-id": {Data: []byte("0123456789abcdef0123456789abcdef\n")}}, "0123456789abcdef0123456789abcdef", nil},
		{"bad machine-id", fstest.MapFS{"etc/machine-id": {Data: []byte("bad id\n")}}, "", board.ErrNoSerial},
	}
	for _, tt := range tests {
		got, err := Serial(tt.fs)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("%s: got %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}

func TestModel(t *testing.T) {
	fs := fstest.MapFS{"proc/device-tree/model": {Data: []byte("Raspberry Pi 5 Model B Rev 1.0\x00")}}
	if m := Model(fs); m != "Raspberry Pi 5 Model B Rev 1.0" {
		t.Fatalf("model %q", m)
	}
	if m := Model(fstest.MapFS{}); m != "" {
		t.Fatalf("absent model %q", m)
	}
}

func TestOpenOffPi(t *testing.T) {
	if runtime.GOARCH == "arm" || runtime.GOARCH == "arm64" {
		t.Skip("may be a real Pi")
	}
	if _, err := Open(board.DefaultPi()); !errors.Is(err, board.ErrUnknown) {
		t.Fatalf("got %v, want ErrUnknown", err)
	}
	if _, err := Open(board.Config{Kind: "sim"}); !errors.Is(err, board.ErrUnknown) {
		t.Fatalf("got %v", err)
	}
}
