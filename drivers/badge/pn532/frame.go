package pn532

import (
	"errors"
	"fmt"

	"labelstation/drivers/badge"
)

// Frame bytes, NXP PN532 User Manual (UM0701-02) §6.2.1:
//
//	normal information frame: 00 00 FF LEN LCS TFI PD0…PDn DCS 00
//	  LEN = bytes in TFI+PD; LEN+LCS ≡ 0 (mod 256); TFI+PD0+…+PDn+DCS ≡ 0 (mod 256)
//	ACK frame  (§6.2.1.3): 00 00 FF 00 FF 00
//	NACK frame (§6.2.1.4): 00 00 FF FF 00 00
//	error frame (§6.2.1.5): 00 00 FF 01 FF 7F 81 00
const (
	tfiHost   = 0xD4 // host controller to PN532
	tfiPN532  = 0xD5 // PN532 to host controller
	tfiError  = 0x7F // syntax error frame from the PN532
	frameOver = 8    // preamble, 2 start code, LEN, LCS, TFI, DCS, postamble
)

var (
	ackFrame  = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	nackFrame = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
)

var (
	// ErrChecksum: a frame's LCS or DCS is wrong (a line glitch).
	ErrChecksum = fmt.Errorf("pn532: checksum: %w", badge.ErrBadFrame)
	// ErrSyntax: the PN532 answered with its error frame (UM §6.2.1.5).
	ErrSyntax = errors.New("pn532: PN532 reported a syntax error")
	// ErrMalformed: a frame whose header cannot be a frame (LEN 0 outside an ACK, an
	// extended frame this driver never asks for) — a lost or corrupted byte on the line.
	ErrMalformed = fmt.Errorf("pn532: malformed frame: %w", badge.ErrBadFrame)
	// ErrNoACK: the PN532 did not acknowledge a command frame.
	ErrNoACK = errors.New("pn532: no ACK")
	// errIncomplete: more bytes are needed (streaming HSU reads).
	errIncomplete = errors.New("pn532: incomplete frame")
)

// buildFrame wraps a host command (command code and parameters) in a normal
// information frame.
func buildFrame(cmd byte, params []byte) []byte {
	n := 2 + len(params) // TFI + command code + params
	f := make([]byte, 0, n+frameOver-1)
	f = append(f, 0x00, 0x00, 0xFF, byte(n), byte(-n))
	sum := byte(tfiHost) + cmd
	f = append(f, tfiHost, cmd)
	for _, p := range params {
		sum += p
	}
	f = append(f, params...)
	return append(f, -sum, 0x00)
}

type frameKind int

const (
	kindInfo frameKind = iota
	kindACK
	kindNACK
	kindError
)

// parseFrame finds the first frame in b (leading zero padding and garbage
// before the 00 FF start code are skipped). It returns the kind, for an
// information frame the data after TFI, and how many bytes of b it used.
// It returns errIncomplete when b ends inside a frame.
func parseFrame(b []byte) (kind frameKind, data []byte, used int, err error) {
	i := 0
	for ; i+1 < len(b); i++ {
		if b[i] == 0x00 && b[i+1] == 0xFF {
			break
		}
	}
	if i+1 >= len(b) {
		return 0, nil, 0, errIncomplete
	}
	h := b[i+2:]
	if len(h) < 2 {
		return 0, nil, 0, errIncomplete
	}
	ln, lcs := h[0], h[1]
	// A broken header consumes only the start code: a lost byte on UART can put the real
	// start code of the next frame inside what looked like this header.
	skip := i + 2
	switch {
	case ln == 0x00 && lcs == 0xFF:
		return kindACK, nil, i + 4, nil
	case ln == 0xFF && lcs == 0x00:
		return kindNACK, nil, i + 4, nil
	case ln == 0xFF && lcs == 0xFF:
		return 0, nil, skip, fmt.Errorf("%w: extended frame (LEN FF LCS FF) not supported", ErrMalformed)
	case ln+lcs != 0:
		return 0, nil, skip, fmt.Errorf("%w: LEN %#02x LCS %#02x", ErrChecksum, ln, lcs)
	case ln == 0:
		// LEN+LCS checks out, but a normal frame carries at least TFI: this is an ACK
		// (00 FF) that lost its LCS byte on the wire, or noise.
		return 0, nil, skip, fmt.Errorf("%w: LEN 0 LCS %#02x", ErrMalformed, lcs)
	}
	if len(h) < 2+int(ln)+1 {
		return 0, nil, 0, errIncomplete
	}
	body := h[2 : 2+int(ln)]
	dcs := h[2+int(ln)]
	used = i + 2 + 2 + int(ln) + 1
	var sum byte
	for _, c := range body {
		sum += c
	}
	if sum+dcs != 0 {
		return 0, nil, used, fmt.Errorf("%w: DCS %#02x for % x", ErrChecksum, dcs, body)
	}
	switch body[0] {
	case tfiPN532:
		return kindInfo, body[1:], used, nil
	case tfiError:
		return kindError, nil, used, ErrSyntax
	default:
		return 0, nil, used, fmt.Errorf("pn532: frame TFI %#02x, want D5", body[0])
	}
}
