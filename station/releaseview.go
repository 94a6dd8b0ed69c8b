package station

import (
	"fmt"
	"strconv"
	"time"

	"labelstation/display"
)

// Hints of the select and preview screens; the print button is B (ok on the default Raspberry
// Pi wiring), any other button is A.
const (
	selectHint = "A next  B print"
	backHint   = "A next  B back"
	sendingMsg = "Sending..."
)

// viewRelease draws the release experience's screens: one entry of the job list per screen
// (so a 128x64 panel shows title, labels, age and time left legibly), the preview, and the
// answer to a preview declined.
func viewRelease(v *display.View, m Model, now time.Time) {
	switch m.Phase {
	case Select:
		v.Kind = display.Select
		j, all, back := SelectedJob(m)
		_, n := selectEntries(m.Jobs)
		// The entry's name is the large line where the panel has room, else the headline.
		v.Title = fmt.Sprintf("Choose %d/%d", m.Cursor+1, n)
		switch {
		case all:
			labels := 0
			for _, j := range m.Jobs {
				labels += j.Labels
			}
			v.Hero = fmt.Sprintf("Print all %d jobs", len(m.Jobs))
			v.Lines = []string{plural(labels, "label"), selectHint}
		case back:
			v.Hero = "Back"
			v.Lines = []string{"Print nothing now.", backHint}
		default:
			v.Hero = j.Title
			v.Lines = []string{"x" + strconv.Itoa(j.Labels)}
			if age := ago(j.Submitted, now); age != "" {
				v.Lines[0] += ", " + age
			}
			if left := timeLeft(j.Expires, now); left != "" {
				v.Lines = append(v.Lines, left)
			}
			v.Lines = append(v.Lines, selectHint)
		}
		if m.Releasing {
			v.Lines = []string{sendingMsg}
		}
	case Preview:
		v.Kind, v.Title, v.Image = display.Preview, m.Title, m.PreviewImage
	case Kept:
		v.Kind, v.Title, v.Hero = display.Done, "Not printed", "Kept here"
		v.Lines = []string{"Tap again to print it."}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// ago is a job's age, "2h old"; empty when the cloud did not say when it was submitted.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	return short(now.Sub(t)) + " old"
}

// timeLeft is how long a held job has before it expires, "7h 40m left"; empty without an
// expiry.
func timeLeft(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := t.Sub(now)
	if d < time.Minute {
		return "<1m left"
	}
	if d < 10*time.Hour && d >= time.Hour && d%time.Hour >= time.Minute {
		return fmt.Sprintf("%dh %dm left", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return short(d) + " left"
}

// short is a duration in its largest whole unit: 45s, 12m, 7h, 3d.
func short(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(max(int(d/time.Second), 0)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}
