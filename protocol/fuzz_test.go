package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The messages a station receives from the cloud, fuzzed through Decode: it never panics, a
// refusal says what is wrong with the package prefix, and anything accepted survives an
// encode/decode round trip unchanged, so what the station journals is what it decoded.

// Seeds are the examples of docs/protocol.md and what devcloud sends.
var (
	jobSeeds = []string{
		`{"v":2,"id":"job_1","title":"Shipping labels","user":{"id":"alice","name":"Alice Adler"},"layout":{"v":1,"size_mm":[100,150],"items":[{"type":"text","at_mm":[5,5],"value":"{{name}}"}]},"format":"csv","data":"bmFtZQpBZGEK","labels":3}`,
		`{"v":2,"id":"job_2","title":"","user":{"id":"","name":""},"layout":null,"format":"json","data":"W3siYSI6MX1d","labels":0}`,
		`{"v":0,"id":"job_1"}`,
		`{"id":"job_1"}`,
		`{"v":2,"id":"job_1","data":"not base64!","labels":-1}`,
	}
	lookupSeeds = []string{
		`{"v":2,"req":"9c1d","user":{"id":"alice","name":"Alice Adler"},"jobs":[{"id":"job_1","title":"Shipping labels","labels":3}]}`,
		`{"v":2,"req":"9c1d","jobs":[],"error":{"code":"unknown_badge","message":"this badge is not registered"}}`,
		`{"v":2,"req":"9c1d","jobs":null}`,
	}
	releaseSeeds = []string{
		`{"v":2,"req":"77ab","released":["job_1"]}`,
		`{"v":2,"req":"77ab","released":[],"error":{"code":"not_found","message":"job_9"}}`,
	}
	configSeeds = []string{
		`{"v":2,"version":1796040000917,"config":{"v":1,"badge":{"hash_key":"k"},"printer":{"dpi":300}}}`,
		`{"v":2,"version":2,"config":"not an object"}`,
		`{"v":2,"version":0,"config":null}`,
	}
	statusAckSeeds = []string{
		`{"v":2,"job":"job_1","state":"printed","seq":4}`,
		`{"v":2,"job":"job_9","state":"printing","seq":2,"error":"unknown job"}`,
	}
	commandSeeds = []string{
		`{"v":2,"id":"cmd_1","name":"test_print","args":{}}`,
		`{"v":2,"id":"cmd_2","name":"reenroll"}`,
		`{"v":2,"id":"cmd_3","name":"identify","args":[1,2,{"x":null}]}`,
	}
)

func fuzzDecode[T any](f *testing.F, seeds []string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v T
		if err := Decode(data, &v); err != nil {
			if !strings.HasPrefix(err.Error(), "protocol: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it again: %v", data, err)
		}
		var back T
		if err := Decode(b, &back); err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", b, err)
		}
		if !reflect.DeepEqual(normal(t, back), normal(t, v)) {
			t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", back, v)
		}
	})
}

// normal compares messages by their encoding: raw JSON fields are compacted on encode, so the
// decoded bytes may differ in whitespace only.
func normal(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func FuzzDecodeJob(f *testing.F)           { fuzzDecode[Job](f, jobSeeds) }
func FuzzDecodeLookupReply(f *testing.F)   { fuzzDecode[LookupReply](f, lookupSeeds) }
func FuzzDecodeReleaseReply(f *testing.F)  { fuzzDecode[ReleaseReply](f, releaseSeeds) }
func FuzzDecodeConfigDesired(f *testing.F) { fuzzDecode[ConfigDesired](f, configSeeds) }
func FuzzDecodeCommand(f *testing.F)       { fuzzDecode[Command](f, commandSeeds) }
func FuzzDecodeJobStatusAck(f *testing.F)  { fuzzDecode[JobStatusAck](f, statusAckSeeds) }

// Every seed of the fuzz targets is checked on each ordinary test run, and the documented
// examples really decode.
func TestDocumentedExamplesDecode(t *testing.T) {
	check := func(name string, v any, s string) {
		if err := Decode([]byte(s), v); err != nil {
			t.Errorf("%s example %s: %v", name, s, err)
		}
	}
	check("job", &Job{}, jobSeeds[0])
	check("lookup reply", &LookupReply{}, lookupSeeds[0])
	check("release reply", &ReleaseReply{}, releaseSeeds[0])
	check("config", &ConfigDesired{}, configSeeds[0])
	check("command", &Command{}, commandSeeds[0])
	check("status ack", &JobStatusAck{}, statusAckSeeds[0])
	if err := Decode([]byte(jobSeeds[2]), &Job{}); !errors.Is(err, ErrVersion) {
		t.Errorf("v=0 job: %v, want ErrVersion", err)
	}
}
