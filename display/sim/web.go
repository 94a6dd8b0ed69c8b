package sim

import (
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"labelstation/board"
)

// Handler serves the panel's web mirror:
//
//	GET  /          the page: the live panel, a tap form, demo badges, buttons
//	GET  /frame.png the newest frame (X-Frame-Seq carries its number)
//	GET  /events    server-sent events, one "data: <frame number>" per frame,
//	                so the page refreshes on change without polling
//	POST /tap       form field uid=<hex>; calls onTap with the bytes
//	POST /button    form fields name=<button> and held_ms=<how long the page
//	                saw it held> (absent: a short press); calls onButton with a
//	                long press when held_ms reaches Options.LongPress
//
// Links are relative, so the handler can be mounted under a prefix with
// http.StripPrefix. onTap and onButton run on the request's goroutine and
// should hand the event off quickly; a nil one leaves its route out (404).
// An open /events stream ends when its client goes away; http.Server.Close
// ends them all.
func (p *Panel) Handler(onTap func(uid []byte), onButton func(board.Press)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, p.pageData(onTap != nil, onButton != nil)); err != nil {
			http.Error(w, "sim: "+err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /frame.png", func(w http.ResponseWriter, r *http.Request) {
		seq, data := p.frame()
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Frame-Seq", strconv.Itoa(seq))
		w.Write(data)
	})
	mux.HandleFunc("GET /events", p.events)
	if onTap != nil {
		mux.HandleFunc("POST /tap", func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, 4096)
			uid, err := ParseUID(r.PostFormValue("uid"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			onTap(uid)
			fmt.Fprintf(w, "tapped %x\n", uid)
		})
	}
	if onButton != nil {
		mux.HandleFunc("POST /button", func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, 4096)
			name := r.PostFormValue("name")
			if !slices.Contains(p.opt.Buttons, name) {
				http.Error(w, fmt.Sprintf("sim: unknown button %q, have %s", name, strings.Join(p.opt.Buttons, ", ")), http.StatusBadRequest)
				return
			}
			held, err := heldFor(r.PostFormValue("held_ms"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			pr := board.Press{Name: name, Long: held >= p.opt.LongPress}
			onButton(pr)
			if pr.Long {
				fmt.Fprintf(w, "long press %s\n", name)
				return
			}
			fmt.Fprintf(w, "pressed %s\n", name)
		})
	}
	return mux
}

// heldFor reads the held_ms field: whole milliseconds, empty for a plain click.
func heldFor(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	ms, err := strconv.Atoi(v)
	if err != nil || ms < 0 || ms > 3600_000 {
		return 0, fmt.Errorf("sim: held_ms %q: want whole milliseconds from 0 to 3600000", v)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// events streams frame numbers (HTML Living Standard §9.2, server-sent
// events): the current one at once, then one per new frame.
func (p *Panel) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	after := -1
	for {
		seq, _, err := p.WaitFrame(r.Context(), after)
		if err != nil {
			return // client gone
		}
		if _, err := fmt.Fprintf(w, "data: %d\n\n", seq); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		after = seq
	}
}

type pageBadge struct{ Name, UID string }

type pageData struct {
	W, H    int
	Badges  []pageBadge
	Buttons []string
	Tap     bool
	LongMs  int64
}

func (p *Panel) pageData(tap, buttons bool) pageData {
	d := pageData{W: p.opt.Size.X * p.opt.Scale, H: p.opt.Size.Y * p.opt.Scale, Tap: tap, LongMs: p.opt.LongPress.Milliseconds()}
	if tap {
		for _, b := range p.opt.Badges {
			d.Badges = append(d.Badges, pageBadge{Name: b.Name, UID: hex.EncodeToString(b.UID)})
		}
	}
	if buttons {
		d.Buttons = p.opt.Buttons
	}
	return d
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Label station panel</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; background: #eee; }
#panel { image-rendering: pixelated; border: 12px solid #222; border-radius: 6px; background: #fff; display: block; }
form { margin: 1em 0; }
button { margin-right: .5em; }
#msg { min-height: 1.5em; font-family: monospace; }
</style></head>
<body>
<h1>Label station panel</h1>
<img id="panel" src="frame.png" width="{{.W}}" height="{{.H}}" alt="panel">
<p>Frame <span id="seq">?</span></p>
{{if .Buttons}}<p id="buttons">{{range .Buttons}}<button type="button" name="name" value="{{.}}">{{.}}</button>{{end}}
<small>Hold a button {{.LongMs}} ms or longer (mouse, touch, Space or Enter) for a long press.</small></p>{{end}}
{{if .Tap}}<form data-post="tap">
<label>Badge UID (hex) <input name="uid" placeholder="04a23b91" pattern="(0x)?[0-9A-Fa-f:\- ]+" required></label>
<button>Tap</button></form>
{{if .Badges}}<form data-post="tap">Demo badges: {{range .Badges}}<button name="uid" value="{{.UID}}">{{.Name}}</button>{{end}}</form>{{end}}
{{end}}
<p id="msg"></p>
<script>
const img = document.getElementById("panel"), seq = document.getElementById("seq"), msg = document.getElementById("msg");
new EventSource("events").onmessage = (e) => { img.src = "frame.png?n=" + e.data; seq.textContent = e.data; };
// A button acts as the board's do: a long press as soon as it has been held long enough, a
// short one when let go sooner. The server decides from held_ms with the same threshold.
const longMs = {{.LongMs}};
async function press(name, held) {
  const body = new URLSearchParams({name, held_ms: String(Math.round(held))});
  const r = await fetch("button", {method: "POST", body});
  msg.textContent = (await r.text()).trim();
}
for (const b of document.querySelectorAll("#buttons button")) {
  let down = null, timer = null, sent = false;
  const start = () => {
    if (down !== null) return;
    down = performance.now(); sent = false;
    timer = setTimeout(() => { down = null; sent = true; press(b.value, longMs); }, longMs);
  };
  const end = () => {
    if (down === null) return;
    clearTimeout(timer);
    const held = performance.now() - down;
    down = null; sent = true;
    press(b.value, held);
  };
  const isKey = (e) => e.key === " " || e.key === "Enter";
  b.addEventListener("pointerdown", (e) => { b.setPointerCapture(e.pointerId); start(); });
  b.addEventListener("pointerup", end);
  b.addEventListener("pointercancel", () => { clearTimeout(timer); down = null; });
  b.addEventListener("keydown", (e) => { if (isKey(e)) { e.preventDefault(); if (!e.repeat) start(); } });
  b.addEventListener("keyup", (e) => { if (isKey(e)) { e.preventDefault(); end(); } });
  // A click no pointer or key was seen for (assistive tools, element.click()) is a short press.
  b.addEventListener("click", () => { if (sent) { sent = false; return; } press(b.value, 0); });
}
for (const f of document.querySelectorAll("form[data-post]")) {
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = new URLSearchParams(new FormData(f, e.submitter));
    const r = await fetch(f.dataset.post, {method: "POST", body});
    msg.textContent = (await r.text()).trim();
  });
}
</script>
</body></html>
`))
