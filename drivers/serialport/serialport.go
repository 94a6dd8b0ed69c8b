// Package serialport opens a tty (a UART, a USB-serial adapter or a
// pseudo-terminal) in raw mode with the line settings label printers and
// 125 kHz readers need.
//
// It sets termios directly (termios(3)) rather than through
// github.com/tarm/serial because tarm offers neither RTS/CTS nor XON/XOFF
// flow control and its reads cannot be cancelled; here the port is an
// *os.File in Go's poller, so read and write deadlines work and a pending
// Read is released by a deadline in the past.
package serialport

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Config is the line setting. The zero value (after Defaults) is 9600 8N1
// without flow control.
type Config struct {
	Baud     int    // default 9600
	DataBits int    // 7 or 8, default 8
	Parity   string // "none" (default), "odd", "even"
	StopBits int    // 1 (default) or 2
	Flow     string // "none" (default), "rtscts", "xonxoff"
}

// ErrConfig is wrapped by every invalid setting.
var ErrConfig = errors.New("serialport: bad config")

// ParseQuery reads a Config from URL query parameters
// (baud, data, parity, stop, flow), rejecting unknown ones.
func ParseQuery(q url.Values) (Config, error) {
	var c Config
	for k, v := range q {
		if len(v) != 1 {
			return c, fmt.Errorf("%w: %s given %d times", ErrConfig, k, len(v))
		}
		var err error
		switch k {
		case "baud":
			c.Baud, err = strconv.Atoi(v[0])
		case "data":
			c.DataBits, err = strconv.Atoi(v[0])
		case "stop":
			c.StopBits, err = strconv.Atoi(v[0])
		case "parity":
			c.Parity = v[0]
		case "flow":
			c.Flow = v[0]
		default:
			return c, fmt.Errorf("%w: unknown parameter %q (want baud, data, parity, stop, flow)", ErrConfig, k)
		}
		if err != nil {
			return c, fmt.Errorf("%w: %s=%q: not a number", ErrConfig, k, v[0])
		}
	}
	return c, c.Validate()
}

func (c Config) withDefaults() Config {
	if c.Baud == 0 {
		c.Baud = 9600
	}
	if c.DataBits == 0 {
		c.DataBits = 8
	}
	if c.Parity == "" {
		c.Parity = "none"
	}
	if c.StopBits == 0 {
		c.StopBits = 1
	}
	if c.Flow == "" {
		c.Flow = "none"
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, ok := bauds[c.Baud]; !ok {
		return fmt.Errorf("%w: baud %d not supported", ErrConfig, c.Baud)
	}
	if c.DataBits != 7 && c.DataBits != 8 {
		return fmt.Errorf("%w: data %d: want 7 or 8", ErrConfig, c.DataBits)
	}
	switch c.Parity {
	case "none", "odd", "even":
	default:
		return fmt.Errorf("%w: parity %q: want none, odd or even", ErrConfig, c.Parity)
	}
	if c.StopBits != 1 && c.StopBits != 2 {
		return fmt.Errorf("%w: stop %d: want 1 or 2", ErrConfig, c.StopBits)
	}
	switch c.Flow {
	case "none", "rtscts", "xonxoff":
	default:
		return fmt.Errorf("%w: flow %q: want none, rtscts or xonxoff", ErrConfig, c.Flow)
	}
	return nil
}

// bauds maps the supported line speeds to their termios speed codes (termios_*.go).
var bauds = map[int]speedCode{
	1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600,
	19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600,
	115200: unix.B115200, 230400: unix.B230400,
}

// Port is an open tty.
type Port struct {
	f    *os.File
	name string
	cfg  Config
}

// Open opens path and applies c. The file is opened non-blocking so that it
// joins Go's poller (deadlines work) and without becoming the controlling
// terminal.
func Open(path string, c Config) (*Port, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("serialport: %w", err)
	}
	p := &Port{f: f, name: path, cfg: c}
	if err := p.apply(); err != nil {
		f.Close()
		return nil, err
	}
	return p, nil
}

// apply reads the tty's termios, configures it and writes it back.
func (p *Port) apply() error {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("serialport: %s: %w", p.name, err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), ioctlGetTermios)
		if err != nil {
			serr = err
			return
		}
		configure(t, p.cfg)
		serr = unix.IoctlSetTermios(int(fd), ioctlSetTermios, t)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("serialport: %s: set termios: %w", p.name, err)
	}
	return nil
}

// Config returns the applied setting, defaults filled in.
func (p *Port) Config() Config { return p.cfg }

func (p *Port) Read(b []byte) (int, error)  { return p.f.Read(b) }
func (p *Port) Write(b []byte) (int, error) { return p.f.Write(b) }

// SetDeadline and friends follow os.File: a past deadline releases a
// blocked Read or Write with os.ErrDeadlineExceeded.
func (p *Port) SetDeadline(t time.Time) error      { return p.f.SetDeadline(t) }
func (p *Port) SetReadDeadline(t time.Time) error  { return p.f.SetReadDeadline(t) }
func (p *Port) SetWriteDeadline(t time.Time) error { return p.f.SetWriteDeadline(t) }

func (p *Port) Close() error { return p.f.Close() }

func (p *Port) String() string {
	c := p.cfg
	return fmt.Sprintf("%s@%d/%d%c%d/%s", p.name, c.Baud, c.DataBits, c.Parity[0]-'a'+'A', c.StopBits, c.Flow)
}

// configure makes t raw (termios(3) cfmakeraw) and sets speed, framing and
// flow control from c.
func configure(t *unix.Termios, c Config) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY | unix.INPCK
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.PARODD | unix.CSTOPB | unix.CRTSCTS
	t.Cflag |= unix.CREAD | unix.CLOCAL
	if c.DataBits == 7 {
		t.Cflag |= unix.CS7
	} else {
		t.Cflag |= unix.CS8
	}
	switch c.Parity {
	case "odd":
		t.Cflag |= unix.PARENB | unix.PARODD
		t.Iflag |= unix.INPCK
	case "even":
		t.Cflag |= unix.PARENB
		t.Iflag |= unix.INPCK
	}
	if c.StopBits == 2 {
		t.Cflag |= unix.CSTOPB
	}
	switch c.Flow {
	case "rtscts":
		t.Cflag |= unix.CRTSCTS
	case "xonxoff":
		t.Iflag |= unix.IXON | unix.IXOFF
	}
	setSpeed(t, bauds[c.Baud])
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
}
