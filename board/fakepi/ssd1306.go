package fakepi

import (
	"image"
	"image/color"
	"sync"
)

// SSD1306 keeps the GDDRAM of an SSD1306 on I²C (Solomon datasheet rev 1.1):
// control byte 0x00 starts a command stream, 0x40 a data stream (§8.1.5.2);
// page addressing (B0-B7, 00-0F, 10-1F, §10.1.1-2, §10.1.13) and the column
// and page ranges of horizontal mode (21, 22, §10.1.4-5) move the cursor;
// AE/AF switch the display off/on. Other commands are skipped with their
// argument bytes.
type SSD1306 struct {
	mu                 sync.Mutex
	w, h               int
	ram                []byte // pages × w
	page, col          int
	colStart, colEnd   int
	pageStart, pageEnd int
	on                 bool
	contrast           byte
}

var _ Device = (*SSD1306)(nil)

// argBytes is the number of argument bytes after a command (§9 table).
var argBytes = map[byte]int{
	0x20: 1, 0x21: 2, 0x22: 2, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5,
	0x81: 1, 0x8D: 1, 0xA3: 2, 0xA8: 1, 0xD3: 1, 0xD5: 1, 0xD9: 1, 0xDA: 1, 0xDB: 1,
}

// NewSSD1306 returns a w×h panel, display off, RAM cleared.
func NewSSD1306(w, h int) *SSD1306 {
	return &SSD1306{w: w, h: h, ram: make([]byte, w*h/8), colEnd: w - 1, pageEnd: h/8 - 1}
}

// Tx implements Device.
func (s *SSD1306) Tx(w, r []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(w) == 0 {
		return nil
	}
	switch w[0] {
	case 0x00:
		s.commands(w[1:])
	case 0x40:
		for _, b := range w[1:] {
			if s.page < len(s.ram)/s.w && s.col < s.w {
				s.ram[s.page*s.w+s.col] = b
			}
			s.col++
			if s.col > s.colEnd {
				s.col = s.colStart
				s.page++
				if s.page > s.pageEnd {
					s.page = s.pageStart
				}
			}
		}
	}
	return nil
}

func (s *SSD1306) commands(c []byte) {
	for i := 0; i < len(c); i++ {
		op := c[i]
		args := c[i+1 : min(len(c), i+1+argBytes[op])]
		i += len(args)
		switch {
		case op == 0xAE:
			s.on = false
		case op == 0xAF:
			s.on = true
		case op == 0x81 && len(args) == 1:
			s.contrast = args[0]
		case op == 0x21 && len(args) == 2:
			s.colStart, s.colEnd, s.col = int(args[0]), int(args[1]), int(args[0])
		case op == 0x22 && len(args) == 2:
			s.pageStart, s.pageEnd, s.page = int(args[0]), int(args[1]), int(args[0])
		case op >= 0xB0 && op <= 0xB7:
			s.page = int(op & 0x07)
		case op <= 0x0F:
			s.col = s.col&0xF0 | int(op)
		case op >= 0x10 && op <= 0x1F:
			s.col = s.col&0x0F | int(op&0x0F)<<4
		}
	}
}

// On reports whether the display is on (AF) rather than off (AE).
func (s *SSD1306) On() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.on
}

// Frame renders GDDRAM as the panel shows it: lit pixels white (§8.7: byte
// column per page, bit 0 at the top). A display switched off shows black.
func (s *SSD1306) Frame() *image.Gray {
	s.mu.Lock()
	defer s.mu.Unlock()
	img := image.NewGray(image.Rect(0, 0, s.w, s.h))
	if !s.on {
		return img
	}
	for y := range s.h {
		for x := range s.w {
			if s.ram[(y/8)*s.w+x]>>(y%8)&1 != 0 {
				img.SetGray(x, y, color.Gray{Y: 255})
			}
		}
	}
	return img
}

// Contrast is the last contrast level set (command 81, §10.1.7).
func (s *SSD1306) Contrast() byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contrast
}
