package sim

import (
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Handler serves the panel's web mirror:
//
//	GET  /          the page: the live panel, a tap form, demo badges, buttons
//	GET  /frame.png the newest frame (X-Frame-Seq carries its number)
//	GET  /events    server-sent events, one "data: <frame number>" per frame,
//	                so the page refreshes on change without polling
//	POST /tap       form field uid=<hex>; calls onTap with the bytes
//	POST /button    form field name=<button>; calls onButton
//
// Links are relative, so the handler can be mounted under a prefix with
// http.StripPrefix. onTap and onButton run on the request's goroutine and
// should hand the event off quickly; a nil one leaves its route out (404).
// An open /events stream ends when its client goes away; http.Server.Close
// ends them all.
func (p *Panel) Handler(onTap func(uid []byte), onButton func(name string)) http.Handler {
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
			onButton(name)
			fmt.Fprintf(w, "pressed %s\n", name)
		})
	}
	return mux
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
}

func (p *Panel) pageData(tap, buttons bool) pageData {
	d := pageData{W: p.opt.Size.X * p.opt.Scale, H: p.opt.Size.Y * p.opt.Scale, Tap: tap}
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
{{if .Buttons}}<form data-post="button">{{range .Buttons}}<button name="name" value="{{.}}">{{.}}</button>{{end}}</form>{{end}}
{{if .Tap}}<form data-post="tap">
<label>Badge UID (hex) <input name="uid" placeholder="04a23b91" pattern="(0x)?[0-9A-Fa-f:\- ]+" required></label>
<button>Tap</button></form>
{{if .Badges}}<form data-post="tap">Demo badges: {{range .Badges}}<button name="uid" value="{{.UID}}">{{.Name}}</button>{{end}}</form>{{end}}
{{end}}
<p id="msg"></p>
<script>
const img = document.getElementById("panel"), seq = document.getElementById("seq"), msg = document.getElementById("msg");
new EventSource("events").onmessage = (e) => { img.src = "frame.png?n=" + e.data; seq.textContent = e.data; };
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
