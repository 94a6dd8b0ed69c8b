package label

import (
	"bytes"
	"encoding/binary"
	"image/png"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Hostile field values: ZPL command prefixes, a ZPL host command, TSPL
// string terminators and line breaks, ESC/POS and other control bytes.
var hostile = []string{
	"^XZ^XA^FO0,0^FDinjected^FS",
	"~JR~PS",
	"~!T~!@",
	"_5E_7E\\&",
	"\"\r\nPRINT 9\r\nCLS\r\n\"",
	"\x1b@\x1dV\x42\x00\x10\x04\x01",
	"nul\x00del\x7f",
	`\["]`,
	`he said "PRINT 9" ok`,
}

const injectLayout = `{"version":1,"id":"inj","width_mm":100,"height_mm":60,"elements":[
 {"type":"text","x":2,"y":2,"text":"{v}","font_pt":8,"max_width":96,"max_lines":3},
 {"type":"text","x":2,"y":20,"text":"{v}","font_pt":8},
 {"type":"barcode","symbology":"qr","x":2,"y":30,"data":"{v}","module":0.5}]}`

// zplCommands lists every command of a ZPL stream and the data of each
// ^FD, hex-unescaped where ^FH is in effect.
func zplCommands(t *testing.T, z []byte) (cmds []string, fds []string) {
	s := string(z)
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\n' {
			i++
			continue
		}
		if c != '^' && c != '~' {
			t.Fatalf("byte %q at %d outside a command in\n%q", c, i, s)
		}
		cmd := s[i : i+3]
		cmds = append(cmds, cmd)
		j := i + 3
		if cmd == "^FD" {
			end := strings.Index(s[j:], "^FS")
			if end < 0 {
				t.Fatalf("^FD without ^FS in %q", s)
			}
			data := s[j : j+end]
			if len(cmds) > 1 && cmds[len(cmds)-2] == "^FH" {
				data = unhexZPL(data)
			}
			fds = append(fds, data)
			i = j + end
			continue
		}
		for j < len(s) && s[j] != '^' && s[j] != '~' {
			j++
		}
		i = j
	}
	return cmds, fds
}

var zplHexRE = regexp.MustCompile(`_[0-9A-F]{2}`)

func unhexZPL(s string) string {
	return zplHexRE.ReplaceAllStringFunc(s, func(h string) string {
		var b [1]byte
		b[0] = hexVal(h[1])<<4 | hexVal(h[2])
		return string(b[:])
	})
}

func hexVal(c byte) byte {
	if c >= 'A' {
		return c - 'A' + 10
	}
	return c - '0'
}

func TestInjectionZPL(t *testing.T) {
	l, err := ParseLayout([]byte(injectLayout))
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"^XA": true, "^CI": true, "^PW": true, "^LL": true, "^LH": true, "^PO": true, "^FO": true,
		"^A0": true, "^FB": true, "^FH": true, "^FD": true, "^FS": true, "^BY": true, "^BQ": true, "^XZ": true}
	for _, v := range hostile {
		out, err := Render(l, Record{"v": v}, Target{Lang: LangZPL})
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		cmds, fds := zplCommands(t, out)
		for _, c := range cmds {
			if !allowed[c] {
				t.Errorf("%q: unexpected command %s in\n%s", v, c, out)
			}
		}
		if cmds[0] != "^XA" || cmds[len(cmds)-1] != "^XZ" || strings.Count(string(out), "^XA") != 1 {
			t.Errorf("%q: not one label: %s", v, out)
		}
		want := zplWant(v)
		if strings.Join(fds, "|") != strings.Join(want, "|") {
			t.Errorf("%q: field data %q, want %q", v, fds, want)
		}
	}
}

func TestInjectionTSPL(t *testing.T) {
	l, err := ParseLayout([]byte(injectLayout))
	if err != nil {
		t.Fatal(err)
	}
	cmdRE := regexp.MustCompile(`^(SIZE|CODEPAGE|DIRECTION|REFERENCE|CLS|TEXT|BLOCK|QRCODE|PRINT) `)
	native, raster := 0, 0
	defer func() {
		if native < 3 || raster < 3 {
			t.Errorf("%d native and %d raster outputs; the test wants both paths exercised", native, raster)
		}
	}()
	for _, v := range hostile {
		out, err := Render(l, Record{"v": v}, Target{Lang: LangTSPL})
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if bytes.HasPrefix(out, []byte("SIZE")) && bytes.Contains(out, []byte("BITMAP 0,0,")) {
			// Raster fallback: the only command after the header is one
			// BITMAP whose payload length is given by its header.
			checkTSPLRaster(t, out)
			raster++
			continue
		}
		native++
		lines := strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n")
		prints := 0
		for _, line := range lines {
			if line == "CLS" {
				continue
			}
			if !cmdRE.MatchString(line) {
				t.Errorf("%q: unexpected line %q", v, line)
			}
			if strings.HasPrefix(line, "PRINT") {
				prints++
			}
			for _, c := range []byte(line) {
				if c < 0x20 {
					t.Errorf("%q: control byte 0x%02x in line %q", v, c, line)
				}
			}
			// Every quote inside the string literal is escaped.
			if strings.HasPrefix(line, "TEXT") || strings.HasPrefix(line, "BLOCK") || strings.HasPrefix(line, "QRCODE") {
				lit := line[strings.LastIndex(line, `,"`)+2 : len(line)-1]
				if strings.Contains(strings.ReplaceAll(lit, `\["]`, ""), `"`) {
					t.Errorf("%q: unescaped quote in %q", v, line)
				}
			}
		}
		if prints != 1 {
			t.Errorf("%q: %d PRINT commands", v, prints)
		}
	}
}

func checkTSPLRaster(t *testing.T, out []byte) {
	t.Helper()
	i := bytes.Index(out, []byte("BITMAP "))
	if i < 0 {
		t.Fatalf("no BITMAP in %q", out)
	}
	rest := out[i+len("BITMAP "):]
	var nums [5]int
	for k := range nums {
		j := bytes.IndexByte(rest, ',')
		n, err := strconv.Atoi(string(rest[:j]))
		if j < 0 || err != nil {
			t.Fatalf("bad BITMAP header at %q", rest[:min(40, len(rest))])
		}
		nums[k], rest = n, rest[j+1:]
	}
	payload := nums[2] * nums[3]
	if len(rest) < payload || string(rest[payload:]) != "\r\nPRINT 1,1\r\n" {
		t.Errorf("payload of %d bytes is not followed by exactly PRINT", payload)
	}
}

func TestInjectionESCPOS(t *testing.T) {
	l, err := ParseLayout([]byte(injectLayout))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range hostile {
		out, err := Render(l, Record{"v": v}, Target{Lang: LangESCPOS})
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		walkESCPOS(t, out)
	}
}

// walkESCPOS checks the stream is ESC @, GS v 0 images whose declared
// sizes cover their payload exactly, then GS V 66 0: no byte of the data
// can be read as a command.
func walkESCPOS(t *testing.T, out []byte) (rows int) {
	t.Helper()
	if !bytes.HasPrefix(out, []byte{0x1b, '@'}) || !bytes.HasSuffix(out, []byte{0x1d, 'V', 66, 0}) {
		t.Fatalf("stream does not start with ESC @ and end with GS V 66 0")
	}
	p := out[2 : len(out)-4]
	for len(p) > 0 {
		if len(p) < 8 || p[0] != 0x1d || p[1] != 'v' || p[2] != '0' || p[3] != 0 {
			t.Fatalf("expected GS v 0 0, got % x", p[:min(8, len(p))])
		}
		xb := int(binary.LittleEndian.Uint16(p[4:]))
		h := int(binary.LittleEndian.Uint16(p[6:]))
		if len(p) < 8+xb*h {
			t.Fatalf("image of %dx%d bytes runs past the end", xb, h)
		}
		rows += h
		p = p[8+xb*h:]
	}
	return rows
}

func TestInjectionPNG(t *testing.T) {
	l, err := ParseLayout([]byte(injectLayout))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range hostile {
		out, err := Render(l, Record{"v": v}, Target{Lang: LangPNG})
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		img, err := png.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != dots(100, 203) || b.Dy() != dots(60, 203) {
			t.Errorf("png is %v", b)
		}
	}
}

// zplWant is the decoded ^FD data injectLayout's three fields must carry:
// the text lines as laid out (a backslash doubled and newlines as "\&" in
// the ^FB block), and the QR payload unchanged, or no QR field when the data
// is not ASCII (the symbol is then a graphic carrying the UTF-8 ECI header).
func zplWant(v string) []string {
	l, err := ParseLayout([]byte(injectLayout))
	if err != nil {
		panic(err)
	}
	var out []string
	for i := range 2 {
		e := &l.Elements[i]
		t := layoutText(e, visibleControls([]byte(v), e.MaxWidth > 0), dots(e.X, 203), dots(l.WidthMM, 203), 203, defaultFonts)
		text := string(bytes.Join(t.lines, []byte{'\n'}))
		if e.MaxWidth > 0 || len(t.lines) > 1 {
			text = strings.NewReplacer(`\`, `\\`, "\n", `\&`).Replace(text)
		}
		out = append(out, text)
	}
	if !isASCII(v) {
		return out
	}
	return append(out, "MA,"+v)
}
