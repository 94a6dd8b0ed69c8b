package journal

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"labelstation/protocol"
)

// FuzzJournalJob takes a job message the way the station does — protocol.Decode, then Claim —
// and reads it back: the journal never panics, refuses with its package prefix, and returns
// exactly the job it stored (the record and payload encodings round-trip), through Progress and
// Finish too.
func FuzzJournalJob(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"id":"job_1","title":"Shipping labels","user":{"id":"alice","name":"Alice Adler"},"layout":{"v":1,"size_mm":[100,150]},"format":"csv","data":"bmFtZQpBZGEK","labels":3}`,
		`{"v":1,"id":"","labels":1}`,
		`{"v":1,"id":"job_neg","labels":-1}`,
		`{"v":1,"id":"job_\u0000\uffff","title":"\u00e9","layout":[1,"x",null],"format":"xlsx","data":"","labels":0}`,
	} {
		f.Add([]byte(s))
	}
	// One journal per process: opening one per input costs more than the input itself.
	j, err := Open(filepath.Join(f.TempDir(), "journal.db"), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { j.Close() })
	n := 0
	f.Fuzz(func(t *testing.T, msg []byte) {
		var job protocol.Job
		if protocol.Decode(msg, &job) != nil {
			return
		}
		if job.ID != "" {
			// Unique per input, so every input is a new claim; the fuzzed id stays a suffix.
			n++
			job.ID = strconv.Itoa(n) + "/" + job.ID
		}
		e, existed, err := j.Claim(job)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "journal: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if existed {
			t.Fatalf("a fresh journal knows %q", job.ID)
		}
		got, err := j.Get(job.ID)
		if err != nil {
			t.Fatalf("get %q: %v", job.ID, err)
		}
		for _, x := range []Entry{e, got} {
			if x.Job.ID != job.ID || x.Job.Title != job.Title || x.Job.User != job.User || x.Job.Format != job.Format ||
				x.Job.Labels != job.Labels || x.Job.V != job.V || !bytes.Equal(x.Job.Data, job.Data) || !sameJSON(x.Job.Layout, job.Layout) {
				t.Fatalf("journal changed the job:\n got %+v\nwant %+v", x.Job, job)
			}
		}
		if job.Labels > 0 {
			if _, err := j.Progress(job.ID, job.Labels); err != nil {
				t.Fatalf("progress: %v", err)
			}
		}
		if _, err := j.Finish(job.ID, protocol.JobPrinted, ""); err != nil {
			t.Fatalf("finish: %v", err)
		}
		got, err = j.Get(job.ID)
		if err != nil || !got.Finished() || got.Job.ID != job.ID {
			t.Fatalf("after finish: %+v, %v", got, err)
		}
	})
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b) || string(a) == "null" || string(b) == "null"
	}
	var x, y bytes.Buffer
	return json.Compact(&x, a) == nil && json.Compact(&y, b) == nil && x.String() == y.String()
}
