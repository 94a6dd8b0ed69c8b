package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"labelstation/protocol"
)

// clock is an injected clock that only moves when the test says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	t    *testing.T
	path string
	clk  *clock
	j    *Journal
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, path: filepath.Join(t.TempDir(), "journal.db"), clk: newClock()}
	f.open()
	t.Cleanup(func() {
		if f.j != nil {
			f.j.Close()
		}
	})
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	j, err := Open(f.path, Options{Now: f.clk.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	f.j = j
}

// reopen closes and opens the file again: what survives this is on disk.
func (f *fixture) reopen() {
	f.t.Helper()
	if err := f.j.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.j = nil
	f.open()
}

func job(id string, labels int) protocol.Job {
	return protocol.Job{
		V:      protocol.Version,
		ID:     id,
		Title:  "Shelf labels " + id,
		User:   protocol.User{ID: "u1", Name: "Ada"},
		Layout: json.RawMessage(`{"v":1,"size":{"w":50,"h":30}}`),
		Format: "csv",
		Data:   []byte("sku,name\n1,bolt\n2,nut\n"),
		Labels: labels,
	}
}

func TestClaimIsDurable(t *testing.T) {
	f := newFixture(t)
	j1 := job("j1", 2)
	e, existed, err := f.j.Claim(j1)
	if err != nil || existed {
		t.Fatalf("Claim = %v, %v", existed, err)
	}
	want := Entry{Job: j1, State: protocol.JobClaimed, Seq: 1, Claimed: f.clk.Now(), Updated: f.clk.Now()}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("Claim entry\n got %+v\nwant %+v", e, want)
	}
	f.reopen()
	got, err := f.j.Get("j1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen\n got %+v\nwant %+v", got, want)
	}
	if _, err := f.j.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(nope) = %v, want ErrNotFound", err)
	}
}

func TestClaimRedelivered(t *testing.T) {
	f := newFixture(t)
	first, _, err := f.j.Claim(job("j1", 3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.j.Progress("j1", 2); err != nil {
		t.Fatal(err)
	}
	f.reopen()
	f.clk.Advance(time.Minute)
	again := job("j1", 3)
	again.Title = "a redelivery must not overwrite anything"
	e, existed, err := f.j.Claim(again)
	if err != nil || !existed {
		t.Fatalf("Claim(redelivered) existed=%v err=%v", existed, err)
	}
	if e.Printed != 2 || e.State != protocol.JobPrinting || e.Seq != 2 || e.Job.Title != first.Job.Title || !e.Claimed.Equal(first.Claimed) {
		t.Fatalf("redelivery changed the entry: %+v", e)
	}
}

// TestClaimConcurrent: the same message delivered twice at once (QoS 1 redelivery racing the
// original) yields exactly one new claim.
func TestClaimConcurrent(t *testing.T) {
	f := newFixture(t)
	const n = 8
	results := make(chan bool, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, existed, err := f.j.Claim(job("dup", 1))
			if err != nil {
				t.Error(err)
			}
			results <- existed
		})
	}
	wg.Wait()
	close(results)
	fresh := 0
	for existed := range results {
		if !existed {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d claims saw a new job, want exactly 1", fresh)
	}
	if p, _ := f.j.Pending(); len(p) != 1 {
		t.Fatalf("Pending = %d entries, want 1", len(p))
	}
}

func TestClaimInvalid(t *testing.T) {
	f := newFixture(t)
	for _, j := range []protocol.Job{{ID: "", Labels: 1}, {ID: "neg", Labels: -1}} {
		if _, _, err := f.j.Claim(j); !errors.Is(err, ErrRange) {
			t.Errorf("Claim(%+v) = %v, want ErrRange", j, err)
		}
	}
	if _, err := f.j.Get("neg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an invalid claim was journaled: %v", err)
	}
}

// op is one step of a table test.
type op struct {
	progress int    // Progress(id, progress) when finish == ""
	finish   string // Finish(id, finish, "boom")
	err      error  // expected error, nil for success
	state    string // expected state after the step
	printed  int
	seq      int
}

func TestProgressAndFinish(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels int
		ops    []op
	}{
		{"label by label", 3, []op{
			{progress: 0, state: protocol.JobPrinting, seq: 2},
			{progress: 1, state: protocol.JobPrinting, printed: 1, seq: 3},
			{progress: 3, state: protocol.JobPrinting, printed: 3, seq: 4},
			{finish: protocol.JobPrinted, state: protocol.JobPrinted, printed: 3, seq: 5},
			{finish: protocol.JobPrinted, state: protocol.JobPrinted, printed: 3, seq: 5}, // idempotent
		}},
		{"repeat is a no-op", 2, []op{
			{progress: 1, state: protocol.JobPrinting, printed: 1, seq: 2},
			{progress: 1, state: protocol.JobPrinting, printed: 1, seq: 2},
		}},
		{"backwards", 5, []op{
			{progress: 4, state: protocol.JobPrinting, printed: 4, seq: 2},
			{progress: 3, err: ErrBackwards, state: protocol.JobPrinting, printed: 4, seq: 2},
		}},
		{"beyond the job", 2, []op{
			{progress: 3, err: ErrRange, state: protocol.JobClaimed, seq: 1},
		}},
		{"printed before the last label", 2, []op{
			{progress: 1, state: protocol.JobPrinting, printed: 1, seq: 2},
			{finish: protocol.JobPrinted, err: ErrIncomplete, state: protocol.JobPrinting, printed: 1, seq: 2},
		}},
		{"failed mid-job", 4, []op{
			{progress: 2, state: protocol.JobPrinting, printed: 2, seq: 2},
			{finish: protocol.JobFailed, state: protocol.JobFailed, printed: 2, seq: 3},
			{progress: 3, err: ErrFinished, state: protocol.JobFailed, printed: 2, seq: 3},
			{finish: protocol.JobPrinted, err: ErrFinished, state: protocol.JobFailed, printed: 2, seq: 3},
		}},
		{"not a final state", 1, []op{
			{finish: protocol.JobPrinting, err: ErrState, state: protocol.JobClaimed, seq: 1},
		}},
		{"empty job", 0, []op{
			{finish: protocol.JobPrinted, state: protocol.JobPrinted, seq: 2},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if _, _, err := f.j.Claim(job("j", tc.labels)); err != nil {
				t.Fatal(err)
			}
			for i, o := range tc.ops {
				var err error
				if o.finish != "" {
					_, err = f.j.Finish("j", o.finish, "boom")
				} else {
					_, err = f.j.Progress("j", o.progress)
				}
				if !errors.Is(err, o.err) || (o.err == nil) != (err == nil) {
					t.Fatalf("step %d: err = %v, want %v", i, err, o.err)
				}
				f.reopen()
				e, err := f.j.Get("j")
				if err != nil {
					t.Fatal(err)
				}
				if e.State != o.state || e.Printed != o.printed || e.Seq != o.seq {
					t.Fatalf("step %d: state=%s printed=%d seq=%d, want %s %d %d", i, e.State, e.Printed, e.Seq, o.state, o.printed, o.seq)
				}
			}
		})
	}
}

func TestFinishDropsPayload(t *testing.T) {
	f := newFixture(t)
	f.j.Claim(job("j", 1))
	f.j.Progress("j", 1)
	f.clk.Advance(time.Second)
	e, err := f.j.Finish("j", protocol.JobPrinted, "")
	if err != nil {
		t.Fatal(err)
	}
	f.reopen()
	got, err := f.j.Get("j")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) || got.Job.Layout != nil || got.Job.Data != nil || got.Job.Title == "" || !got.Updated.Equal(f.clk.Now()) {
		t.Fatalf("finished entry %+v (returned %+v)", got, e)
	}
}

func TestPendingOrder(t *testing.T) {
	f := newFixture(t)
	// Same timestamp for all: the order must come from the claim sequence, not the clock.
	for _, id := range []string{"c", "a", "d", "b"} {
		if _, _, err := f.j.Claim(job(id, 1)); err != nil {
			t.Fatal(err)
		}
	}
	f.j.Progress("a", 1)
	f.j.Finish("a", protocol.JobPrinted, "")
	f.j.Finish("d", protocol.JobFailed, "paper out")
	f.reopen()
	p, err := f.j.Pending()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range p {
		ids = append(ids, e.Job.ID)
		if e.Job.Data == nil {
			t.Errorf("pending %s lost its payload", e.Job.ID)
		}
	}
	if !slices.Equal(ids, []string{"c", "b"}) {
		t.Fatalf("Pending = %v, want [c b]", ids)
	}
}

func TestReporting(t *testing.T) {
	f := newFixture(t)
	f.j.Claim(job("x", 2))
	f.j.Claim(job("y", 1))
	f.j.Progress("x", 1) // seq 2
	if err := f.j.MarkReported("x", 2); err != nil {
		t.Fatal(err)
	}
	if err := f.j.MarkReported("x", 1); err != nil { // late ack of an older report
		t.Fatal(err)
	}
	if err := f.j.MarkReported("x", 3); !errors.Is(err, ErrRange) {
		t.Fatalf("MarkReported beyond Seq = %v, want ErrRange", err)
	}
	if err := f.j.MarkReported("zz", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MarkReported(unknown) = %v, want ErrNotFound", err)
	}
	f.reopen()
	x, _ := f.j.Get("x")
	if x.Reported != 2 {
		t.Fatalf("Reported = %d, want 2 (never lowered)", x.Reported)
	}
	u, err := f.j.Unreported()
	if err != nil {
		t.Fatal(err)
	}
	if len(u) != 1 || u[0].Job.ID != "y" {
		t.Fatalf("Unreported = %+v, want just y", u)
	}
	f.j.Progress("x", 2)
	u, _ = f.j.Unreported()
	if len(u) != 2 || u[0].Job.ID != "x" || u[1].Job.ID != "y" {
		t.Fatalf("Unreported order = %+v, want x then y (claim order)", u)
	}
	st := u[0].Status()
	want := protocol.JobStatus{V: protocol.Version, Job: "x", State: protocol.JobPrinting, Printed: 2, Total: 2, Seq: 3, TS: f.clk.Now()}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("Status = %+v, want %+v", st, want)
	}
}

func TestPrune(t *testing.T) {
	f := newFixture(t)
	f.j.Claim(job("done", 1))
	f.j.Progress("done", 1)
	f.j.Finish("done", protocol.JobPrinted, "")
	f.j.MarkReported("done", 3)
	f.j.Claim(job("failed-unacked", 1))
	f.j.Finish("failed-unacked", protocol.JobFailed, "jam")
	f.j.Claim(job("open", 1))
	f.clk.Advance(time.Hour)
	f.j.Claim(job("recent", 1))
	f.j.Finish("recent", protocol.JobFailed, "jam")
	f.j.MarkReported("recent", 2)

	n, err := f.j.Prune(f.clk.Now().Add(-time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1 (only the old, finished, acknowledged job)", n, err)
	}
	f.reopen()
	for _, id := range []string{"failed-unacked", "open", "recent"} {
		if e, err := f.j.Get(id); err != nil || e.Pruned {
			t.Errorf("%s: %+v, %v; want kept", id, e, err)
		}
	}
	// A late redelivery of the pruned job is recognised and reports its final state.
	e, existed, err := f.j.Claim(job("done", 1))
	if err != nil || !existed || !e.Pruned || e.State != protocol.JobPrinted || e.Seq != 3 || e.Printed != 1 {
		t.Fatalf("Claim after prune = %+v, existed=%v, %v", e, existed, err)
	}
	if _, err := f.j.Progress("done", 1); !errors.Is(err, ErrFinished) {
		t.Fatalf("Progress on a tombstone = %v, want ErrFinished", err)
	}
	if err := f.j.MarkReported("done", 3); err != nil {
		t.Fatalf("MarkReported on a tombstone = %v", err)
	}
	if p, _ := f.j.Pending(); len(p) != 1 || p[0].Job.ID != "open" {
		t.Fatalf("Pending = %+v", p)
	}
	// Tombstones expire after the TTL (30 days by default).
	f.clk.Advance(31 * 24 * time.Hour)
	if _, err := f.j.Prune(f.clk.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.j.Get("done"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired tombstone still there: %v", err)
	}
}

func TestLocked(t *testing.T) {
	f := newFixture(t)
	_, err := Open(f.path, Options{Timeout: time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

// TestSchema: a file written by a future, incompatible journal is refused rather than misread.
func TestSchema(t *testing.T) {
	f := newFixture(t)
	f.j.Close()
	f.j = nil
	db, err := bolt.Open(f.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("2")) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(f.path, Options{}); !errors.Is(err, ErrSchema) {
		t.Fatalf("Open(schema 2) = %v, want ErrSchema", err)
	}
}

// TestProperty drives random operations against a simple model and checks after every step,
// reopening the file now and then, that the journal and the model agree.
func TestProperty(t *testing.T) {
	type model struct {
		labels, printed, seq, reported int
		state                          string
	}
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			f := newFixture(t)
			m := map[string]*model{}
			var order []string
			for step := range 150 {
				id := fmt.Sprintf("j%d", rng.IntN(12))
				cur := m[id]
				where := fmt.Sprintf("seed %d step %d %s", seed, step, id)
				switch r := rng.IntN(10); {
				case r < 3:
					labels := rng.IntN(5)
					_, existed, err := f.j.Claim(job(id, labels))
					if err != nil || existed != (cur != nil) {
						t.Fatalf("%s: Claim existed=%v err=%v", where, existed, err)
					}
					if cur == nil {
						m[id] = &model{labels: labels, seq: 1, state: protocol.JobClaimed}
						order = append(order, id)
					}
				case r < 7:
					if cur == nil {
						continue
					}
					n := cur.printed + rng.IntN(4) - 1
					_, err := f.j.Progress(id, n)
					switch {
					case finished(cur.state):
						if !errors.Is(err, ErrFinished) {
							t.Fatalf("%s: Progress after finish = %v", where, err)
						}
					case n < cur.printed:
						if !errors.Is(err, ErrBackwards) {
							t.Fatalf("%s: Progress(%d) backwards = %v", where, n, err)
						}
					case n > cur.labels:
						if !errors.Is(err, ErrRange) {
							t.Fatalf("%s: Progress(%d) > %d = %v", where, n, cur.labels, err)
						}
					default:
						if err != nil {
							t.Fatalf("%s: Progress(%d) = %v", where, n, err)
						}
						if n != cur.printed || cur.state != protocol.JobPrinting {
							cur.seq++
						}
						cur.printed, cur.state = n, protocol.JobPrinting
					}
				case r < 8:
					if cur == nil {
						continue
					}
					state := protocol.JobFailed
					if rng.IntN(2) == 0 {
						state = protocol.JobPrinted
					}
					_, err := f.j.Finish(id, state, "x")
					switch {
					case cur.state == state:
						if err != nil {
							t.Fatalf("%s: Finish again = %v", where, err)
						}
					case finished(cur.state):
						if !errors.Is(err, ErrFinished) {
							t.Fatalf("%s: Finish(%s) after %s = %v", where, state, cur.state, err)
						}
					case state == protocol.JobPrinted && cur.printed != cur.labels:
						if !errors.Is(err, ErrIncomplete) {
							t.Fatalf("%s: Finish incomplete = %v", where, err)
						}
					default:
						if err != nil {
							t.Fatalf("%s: Finish = %v", where, err)
						}
						cur.state = state
						cur.seq++
					}
				case r < 9:
					if cur == nil {
						continue
					}
					s := rng.IntN(cur.seq + 2)
					err := f.j.MarkReported(id, s)
					if s > cur.seq {
						if !errors.Is(err, ErrRange) {
							t.Fatalf("%s: MarkReported(%d) > seq %d = %v", where, s, cur.seq, err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%s: MarkReported = %v", where, err)
					}
					cur.reported = max(cur.reported, s)
				default:
					f.reopen()
				}
				// Compare everything.
				var pending, unreported []string
				for _, id := range order {
					want := m[id]
					e, err := f.j.Get(id)
					if err != nil {
						t.Fatalf("%s: Get(%s) = %v", where, id, err)
					}
					if e.State != want.state || e.Printed != want.printed || e.Seq != want.seq || e.Reported != want.reported || e.Job.Labels != want.labels {
						t.Fatalf("%s: %s = %+v, model %+v", where, id, e, *want)
					}
					if !finished(want.state) {
						pending = append(pending, id)
					}
					if want.seq > want.reported {
						unreported = append(unreported, id)
					}
				}
				if got := ids(t, f.j.Pending); !slices.Equal(got, pending) {
					t.Fatalf("%s: Pending = %v, model %v", where, got, pending)
				}
				if got := ids(t, f.j.Unreported); !slices.Equal(got, unreported) {
					t.Fatalf("%s: Unreported = %v, model %v", where, got, unreported)
				}
			}
		})
	}
}

func ids(t *testing.T, list func() ([]Entry, error)) []string {
	t.Helper()
	es, err := list()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Job.ID)
	}
	return out
}

// crashEnv makes the re-executed test binary claim, progress and die without Close.
const crashEnv = "JOURNAL_TEST_CRASH_DB"

func TestCrash(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		j, err := Open(path, Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if _, _, err := j.Claim(job("crash", 5)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for n := 1; n <= 3; n++ {
			if _, err := j.Progress("crash", n); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
		os.Exit(1) // no Close: the process dies holding the database open
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	e, err := j.Get("crash")
	if err != nil {
		t.Fatal(err)
	}
	if e.State != protocol.JobPrinting || e.Printed != 3 || e.Seq != 4 || string(e.Job.Data) != string(job("crash", 5).Data) {
		t.Fatalf("after crash: %+v", e)
	}
	p, err := j.Pending()
	if err != nil || len(p) != 1 || p[0].Printed != 3 {
		t.Fatalf("Pending after crash = %+v, %v; want the job to resume at label 3", p, err)
	}
}

// BenchmarkProgress measures one durable label record: a bbolt commit with fsync. On a
// Raspberry Pi's SD card this is the floor of the per-label cost of exactly-once. The job
// carries a 10,000-record payload, so a Progress that touched the payload would show here.
func BenchmarkProgress(b *testing.B) {
	j, err := Open(filepath.Join(b.TempDir(), "journal.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	jb := job("bench", 1<<30)
	jb.Data = csvRecords(10000)
	if _, _, err := j.Claim(jb); err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		n++
		if _, err := j.Progress("bench", n); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRejectRecordsFailure(t *testing.T) {
	f := newFixture(t)
	e, existed, err := f.j.Reject("bad", "undecodable job: missing labels")
	if err != nil || existed {
		t.Fatalf("Reject = %v, %v", existed, err)
	}
	if e.State != protocol.JobFailed || e.Seq != 1 || e.Reported != 0 || e.Error == "" {
		t.Fatalf("rejected entry %+v", e)
	}
	f.reopen()
	u, err := f.j.Unreported()
	if err != nil || len(u) != 1 || u[0].Status().State != protocol.JobFailed || u[0].Status().Error != e.Error {
		t.Fatalf("Unreported = %+v, %v; want the failed status", u, err)
	}
	// A redelivery is recognised and neither claimed nor printed.
	got, existed, err := f.j.Claim(job("bad", 1))
	if err != nil || !existed || got.State != protocol.JobFailed {
		t.Fatalf("Claim after Reject = %+v, %v, %v", got, existed, err)
	}
	if p, _ := f.j.Pending(); len(p) != 0 {
		t.Fatalf("Pending = %+v, want nothing", p)
	}
	// A known job is left alone.
	f.j.Claim(job("good", 1))
	if e, existed, err := f.j.Reject("good", "x"); err != nil || !existed || e.State != protocol.JobClaimed {
		t.Fatalf("Reject(known) = %+v, %v, %v", e, existed, err)
	}
	if _, _, err := f.j.Reject("", "x"); !errors.Is(err, ErrRange) {
		t.Fatalf("Reject(\"\") = %v, want ErrRange", err)
	}
}

func TestClaimFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(path, Options{MaxSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	big := job("big", 1)
	big.Data = make([]byte, 512<<10)
	if _, _, err := j.Claim(big); !errors.Is(err, ErrFull) {
		t.Fatalf("Claim(512 KiB) = %v, want ErrFull", err)
	}
	if _, err := j.Get("big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused claim left a record: %v", err)
	}
	// The small failure record still fits, and so does a small job.
	if _, _, err := j.Reject("big", "storage full"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := j.Claim(job("small", 1)); err != nil {
		t.Fatal(err)
	}
}

func TestBigJobLeavesSmallJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	big := job("big", 1)
	big.Data = make([]byte, 20<<20)
	for i := range big.Data {
		big.Data[i] = byte('a' + i%26)
	}
	if _, _, err := j.Claim(big); err != nil {
		t.Fatal(err)
	}
	grown, _ := j.Size()
	if grown < 20<<20 {
		t.Fatalf("journal with a 20 MiB job is only %d bytes", grown)
	}
	j.Progress("big", 1)
	if _, err := j.Finish("big", protocol.JobPrinted, ""); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	size, err := j.Size()
	if err != nil {
		t.Fatal(err)
	}
	if size > 1<<20 {
		t.Fatalf("journal is %d bytes after the job finished and the file was compacted (was %d)", size, grown)
	}
	e, err := j.Get("big")
	if err != nil || e.State != protocol.JobPrinted || e.Job.Data != nil {
		t.Fatalf("after compaction: %+v, %v", e, err)
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("compaction left its temporary file: %v", err)
	}
	t.Logf("journal: %d bytes with the job, %d after finish and compaction", grown, size)
}

func TestProgressDoesNotLoadPayload(t *testing.T) {
	f := newFixture(t)
	f.j.Claim(job("j", 2))
	e, err := f.j.Progress("j", 1)
	if err != nil {
		t.Fatal(err)
	}
	if e.Job.Data != nil || e.Job.Layout != nil || e.Printed != 1 {
		t.Fatalf("Progress entry %+v", e)
	}
	// The payload itself is untouched: a restart resumes with it.
	p, err := f.j.Pending()
	if err != nil || len(p) != 1 || string(p[0].Job.Data) != string(job("j", 2).Data) {
		t.Fatalf("Pending = %+v, %v", p, err)
	}
}

// csvRecords is a realistic shipping CSV with n records.
func csvRecords(n int) []byte {
	b := []byte("name,street,zip,city,tracking\n")
	for i := range n {
		b = fmt.Appendf(b, "Customer %d,%d Long Street Name,%05d,Some City,TRK%010d\n", i, i%997, i%99999, i)
	}
	return b
}

// Options.Committed runs once per write transaction and never for a read: one call per Claim,
// Progress, Finish, MarkReported and in-flight record, none for Get or Pending.
func TestCommittedHookOncePerWrite(t *testing.T) {
	var mu sync.Mutex
	var calls int
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(path, Options{Committed: func() {
		mu.Lock()
		calls++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	count := func() int { mu.Lock(); defer mu.Unlock(); return calls }
	if _, _, err := j.Claim(job("j1", 2)); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 1 {
		t.Fatalf("after Claim: %d calls, want 1", got)
	}
	if _, err := j.Get("j1"); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Pending(); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 1 {
		t.Fatalf("after Get and Pending: %d calls, want still 1", got)
	}
	for n := 1; n <= 2; n++ {
		if _, err := j.Progress("j1", n); err != nil {
			t.Fatal(err)
		}
	}
	e, err := j.Finish("j1", protocol.JobPrinted, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.MarkReported("j1", e.Seq); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 5 {
		t.Fatalf("after 2 Progress, Finish and MarkReported: %d calls, want 5", got)
	}
	if _, _, err := j.Claim(job("j2", 2)); err != nil {
		t.Fatal(err)
	}
	if err := j.BeginInFlight("j2", InFlight{From: 0, To: 2}); err != nil {
		t.Fatal(err)
	}
	if err := j.EndInFlight("j2"); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 8 {
		t.Fatalf("after Claim, BeginInFlight and EndInFlight: %d calls, want 8", got)
	}
}
