// Package printer talks to a label printer: a Transport (raw TCP 9100, USB
// printer class, serial) carries the bytes, and a Printer adds the status
// query of its language (ZPL ~HS, TSPL <ESC>!?, ESC/POS DLE EOT) so the
// station can refuse to release into a faulted printer.
package printer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"labelstation/drivers/serialport"
)

// Transport is a byte pipe to a printer: raw TCP 9100, USB /dev/usb/lp*, or
// serial.
type Transport interface {
	io.ReadWriter
	Close() error
	String() string
}

// deadliner is implemented by every transport Dial returns (net.Conn,
// *os.File, *serialport.Port); Printer uses it to bound and cancel I/O.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// DialOptions bound the time spent connecting.
type DialOptions struct {
	// ConnectTimeout bounds a TCP connect; 0 means 5s. The ctx deadline
	// applies too.
	ConnectTimeout time.Duration
}

// ErrURL is wrapped by every malformed transport URL.
var ErrURL = errors.New("printer: bad transport URL")

// Dial opens a transport from a URL: "tcp://host:9100", "usb:///dev/usb/lp0",
// "serial:///dev/ttyUSB0?baud=9600&parity=none&flow=rtscts" (parameters as
// in serialport.ParseQuery).
func Dial(ctx context.Context, rawURL string, opt DialOptions) (Transport, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	switch u.Scheme {
	case "tcp":
		if u.Host == "" || u.Path != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("%w: %q: want tcp://host:port", ErrURL, rawURL)
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "9100")
		}
		d := net.Dialer{Timeout: opt.ConnectTimeout}
		if d.Timeout == 0 {
			d.Timeout = 5 * time.Second
		}
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return nil, fmt.Errorf("printer: %w", err)
		}
		return &tcpTransport{Conn: c, name: "tcp://" + host}, nil
	case "usb":
		if u.Host != "" || u.Path == "" || u.RawQuery != "" {
			return nil, fmt.Errorf("%w: %q: want usb:///dev/usb/lpN", ErrURL, rawURL)
		}
		// The usblp driver is bidirectional when the printer's interface
		// is (USB Printer Class 1.1, protocol 2): reads return its replies.
		f, err := os.OpenFile(u.Path, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("printer: %w", err)
		}
		return &fileTransport{File: f, name: "usb://" + u.Path}, nil
	case "serial":
		if u.Host != "" || u.Path == "" {
			return nil, fmt.Errorf("%w: %q: want serial:///dev/ttyX?baud=...", ErrURL, rawURL)
		}
		cfg, err := serialport.ParseQuery(u.Query())
		if err != nil {
			return nil, fmt.Errorf("printer: %q: %w", rawURL, err)
		}
		p, err := serialport.Open(u.Path, cfg)
		if err != nil {
			return nil, fmt.Errorf("printer: %w", err)
		}
		return &serialTransport{Port: p}, nil
	default:
		return nil, fmt.Errorf("%w: %q: scheme %q: want tcp, usb or serial", ErrURL, rawURL, u.Scheme)
	}
}

type tcpTransport struct {
	net.Conn
	name string
}

func (t *tcpTransport) String() string { return t.name }

type fileTransport struct {
	*os.File
	name string
}

func (t *fileTransport) String() string { return t.name }

type serialTransport struct {
	*serialport.Port
}

func (t *serialTransport) String() string { return "serial://" + t.Port.String() }

var (
	_ deadliner = (*tcpTransport)(nil)
	_ deadliner = (*fileTransport)(nil)
	_ deadliner = (*serialTransport)(nil)
	_ Transport = (*tcpTransport)(nil)
	_ Transport = (*fileTransport)(nil)
	_ Transport = (*serialTransport)(nil)
)
