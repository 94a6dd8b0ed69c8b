//go:build linux

// The assertions read Linux termios bits (CBAUD, TCGETS); the package itself also builds on macOS.

package serialport

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal pair, closed when the test ends.
func openPty(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { master.Close(); tty.Close() })
	return master, tty
}

func TestTermiosApplied(t *testing.T) {
	master, tty := openPty(t)
	q, _ := url.ParseQuery("baud=19200&parity=odd&stop=2&data=7&flow=rtscts")
	c, err := ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(tty.Name(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"B19200", tio.Cflag&unix.CBAUD == unix.B19200},
		{"CSTOPB", tio.Cflag&unix.CSTOPB != 0},
		{"CRTSCTS", tio.Cflag&unix.CRTSCTS != 0},
		{"raw: no ICANON/ECHO", tio.Lflag&(unix.ICANON|unix.ECHO) == 0},
		{"raw: no OPOST", tio.Oflag&unix.OPOST == 0},
		{"no XON/XOFF", tio.Iflag&(unix.IXON|unix.IXOFF) == 0},
	}
	// A pty forces CS8 and clears PARENB (it has no wire); framing is
	// checked on the termios value in TestConfigure.
	for _, c := range checks {
		if !c.ok {
			t.Errorf("termios: %s not set as configured (%+v)", c.name, tio)
		}
	}
	if got := p.String(); got != tty.Name()+"@19200/7O2/rtscts" {
		t.Errorf("String() = %q", got)
	}

	// Raw bytes pass unchanged (no CR/LF mapping) and a past deadline
	// releases a blocked Read.
	if _, err := master.Write([]byte("a\r\n\x03b")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	n := 0
	for n < 5 {
		m, err := p.Read(buf[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += m
	}
	if string(buf) != "a\r\n\x03b" {
		t.Fatalf("read %q", buf)
	}
	_ = p.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := p.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline: %v", err)
	}
}

func TestXonXoff(t *testing.T) {
	_, tty := openPty(t)
	p, err := Open(tty.Name(), Config{Flow: "xonxoff"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Iflag&(unix.IXON|unix.IXOFF) != unix.IXON|unix.IXOFF || tio.Cflag&unix.CRTSCTS != 0 || tio.Cflag&unix.CBAUD != unix.B9600 {
		t.Fatalf("termios %+v", tio)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ q, want string }{
		{"baud=1234", "baud 1234"},
		{"baud=fast", `baud="fast": not a number`},
		{"data=9", "data 9"},
		{"parity=mark", `parity "mark"`},
		{"stop=3", "stop 3"},
		{"flow=dtrdsr", `flow "dtrdsr"`},
		{"speed=9600", `unknown parameter "speed"`},
		{"baud=9600&baud=4800", "baud given 2 times"},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.q)
		_, err := ParseQuery(q)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.q, err, tt.want)
		}
	}
	if _, err := Open("/nonexistent/tty", Config{}); err == nil {
		t.Error("opened a missing tty")
	}
}

func TestConfigure(t *testing.T) {
	// Start from a cooked tty: canonical, echo, CR→NL, output processing.
	cooked := unix.Termios{Iflag: unix.ICRNL | unix.IXON | unix.INPCK, Oflag: unix.OPOST, Lflag: unix.ICANON | unix.ECHO | unix.ISIG, Cflag: unix.CS8 | unix.B38400 | unix.PARENB}
	tests := []struct {
		c                    Config
		cflagSet, cflagClear uint32
		iflagSet, iflagClear uint32
	}{
		{Config{Baud: 9600, DataBits: 8, Parity: "none", StopBits: 1, Flow: "none"},
			unix.CS8 | unix.B9600 | unix.CREAD | unix.CLOCAL, unix.PARENB | unix.CSTOPB | unix.CRTSCTS,
			0, unix.ICRNL | unix.IXON | unix.INPCK},
		{Config{Baud: 4800, DataBits: 7, Parity: "even", StopBits: 2, Flow: "rtscts"},
			unix.CS7 | unix.B4800 | unix.PARENB | unix.CSTOPB | unix.CRTSCTS, unix.PARODD,
			unix.INPCK, unix.IXON},
		{Config{Baud: 115200, DataBits: 8, Parity: "odd", StopBits: 1, Flow: "xonxoff"},
			unix.CS8 | unix.B115200 | unix.PARENB | unix.PARODD, unix.CRTSCTS,
			unix.INPCK | unix.IXON | unix.IXOFF, 0},
	}
	for _, tt := range tests {
		tio := cooked
		configure(&tio, tt.c)
		if tio.Cflag&unix.CSIZE != tt.cflagSet&unix.CSIZE || tio.Cflag&unix.CBAUD != tt.cflagSet&unix.CBAUD {
			t.Errorf("%+v: size/speed %#x", tt.c, tio.Cflag)
		}
		other := tt.cflagSet &^ (unix.CSIZE | unix.CBAUD)
		if tio.Cflag&other != other || tio.Cflag&tt.cflagClear != 0 {
			t.Errorf("%+v: cflag %#x", tt.c, tio.Cflag)
		}
		if tio.Iflag&tt.iflagSet != tt.iflagSet || tio.Iflag&tt.iflagClear != 0 {
			t.Errorf("%+v: iflag %#x", tt.c, tio.Iflag)
		}
		if tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 || tio.Oflag&unix.OPOST != 0 {
			t.Errorf("%+v: not raw", tt.c)
		}
	}
}
