package label

import (
	"bytes"
	"strings"
	"testing"
)

const overflowDoc = `{"version":1,"id":"o","width_mm":60,"height_mm":30,"elements":[
  {"type":"text","x":2,"y":2,"text":"{t}","font_pt":10,"max_width":30,"max_lines":2},
  {"type":"text","x":40,"y":20,"text":"{t}","font_pt":10},
  {"type":"text","x":2,"y":14,"text":"{t}","font_pt":10,"max_width":30,"fit":"shrink"}]}`

// TestOverflowSameInEveryOutput: text too long for its box is cut the same
// way in ZPL, TSPL and the raster (ESC/POS, PNG): the lines the engine lays
// out with the Go fonts, the last ending in an ellipsis, and a warning
// says so before anything prints.
func TestOverflowSameInEveryOutput(t *testing.T) {
	l, err := ParseLayout([]byte(overflowDoc))
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 3)
	rec := Record{"t": long}
	var want [][]string
	for i := range l.Elements {
		e := &l.Elements[i]
		lt := layoutText(e, []byte(long), dots(e.X, 203), dots(l.WidthMM, 203), 203, defaultFonts)
		if !lt.cut || !bytes.HasSuffix(lt.lines[len(lt.lines)-1], []byte(ellipsis)) || len(lt.lines) > e.MaxLines {
			t.Fatalf("elements[%d]: %d lines, cut %v: %q", i, len(lt.lines), lt.cut, lt.lines)
		}
		faceMu.Lock()
		for _, line := range lt.lines {
			if w := (textFaces{defaultFonts, e.Bold, lt.h}).measure(line).Ceil(); w > lt.w {
				t.Errorf("elements[%d]: line %q is %d dots, box %d", i, line, w, lt.w)
			}
		}
		faceMu.Unlock()
		var s []string
		for _, line := range lt.lines {
			s = append(s, string(line))
		}
		want = append(want, s)
	}
	if len(want[0]) != 2 || len(want[1]) != 1 || len(want[2]) != 1 {
		t.Fatalf("line counts %d %d %d", len(want[0]), len(want[1]), len(want[2]))
	}

	z, err := Render(l, rec, Target{Lang: LangZPL})
	if err != nil {
		t.Fatal(err)
	}
	_, fds := zplCommands(t, z)
	if fds[0] != strings.Join(want[0], `\&`) || fds[1] != want[1][0] || fds[2] != want[2][0] {
		t.Errorf("ZPL fields %q, want %q", fds, want)
	}
	if !bytes.Contains(z, []byte("^FB240,2,")) {
		t.Errorf("ZPL block is not 2 lines of 240 dots:\n%s", z)
	}

	ts, err := Render(l, rec, Target{Lang: LangTSPL})
	if err != nil {
		t.Fatal(err)
	}
	var lits []string
	for _, line := range strings.Split(string(ts), "\r\n") {
		if strings.HasPrefix(line, "BLOCK") || strings.HasPrefix(line, "TEXT") {
			lits = append(lits, line[strings.LastIndex(line, `,"`)+2:len(line)-1])
		}
	}
	if strings.Join(lits, "|") != strings.Join(append(append(append([]string{}, want[0]...), want[1]...), want[2]...), "|") {
		t.Errorf("TSPL literals %q, want %q", lits, want)
	}

	// The raster draws exactly those lines: the same bitmap as a record
	// holding them, which needs no cutting.
	one, _ := ParseLayout([]byte(`{"version":1,"id":"o","width_mm":60,"height_mm":30,"elements":[{"type":"text","x":2,"y":2,"text":"{t}","font_pt":10,"max_width":30,"max_lines":2}]}`))
	cutBM, _ := RenderBitmap(one, rec, 203)
	exactBM, _ := RenderBitmap(one, Record{"t": strings.Join(want[0], "\n")}, 203)
	if !bytes.Equal(cutBM.Pix, exactBM.Pix) {
		t.Error("the raster of the long text is not the raster of its laid-out lines")
	}
	ws, err := Validate(l, rec, []Target{{Lang: LangZPL}, {Lang: LangESCPOS}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 3 || !strings.Contains(ws[0], `elements[0] (text): field "t" is cut to 2 line(s) at 203 dpi: "The quick`) {
		t.Errorf("warnings %q", ws)
	}
	if ws, _ := Validate(l, Record{"t": "short"}, AllTargets); len(ws) != 0 {
		t.Errorf("short text warns: %q", ws)
	}
}
