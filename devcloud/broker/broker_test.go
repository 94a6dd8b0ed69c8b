package broker

import (
	"testing"
	"time"
)

func TestStationMay(t *testing.T) {
	in := []string{"warehouse"}
	for _, tt := range []struct {
		station, topic string
		write, want    bool
	}{
		{"st-a", "lrs/v1/st/st-a/lookup", true, true},
		{"st-a", "lrs/v1/st/st-a/job/status", true, true},
		{"st-a", "lrs/v1/st/st-a/job", true, false}, // cloud → station only
		{"st-a", "lrs/v1/st/st-a/job/status/ack", true, false},
		{"st-a", "lrs/v1/st/st-a/config/desired", true, false},
		{"st-a", "lrs/v1/st/st-b/lookup", true, false},
		{"st-a", "lrs/v1/st/st-a/#", false, true},
		{"st-a", "lrs/v1/st/st-b/#", false, false},
		{"st-a", "lrs/v1/st/+/lookup", false, false},
		{"st-a", "lrs/v1/grp/warehouse/config/desired", false, true},
		{"st-a", "lrs/v1/grp/warehouse/cmd", false, true},
		{"st-a", "lrs/v1/grp/office/cmd", false, false}, // not a member
		{"st-a", "lrs/v1/grp/office/config/desired", false, false},
		{"st-a", "lrs/v1/grp/warehouse/#", false, false},
		{"st-a", "lrs/v1/grp/+/cmd", false, false},
		{"st-a", "lrs/v1/grp/warehouse/cmd", true, false},
		{"st-a", "#", false, false},
		{"st+", "lrs/v1/st/st+/lookup", true, false},
		{"", "lrs/v1/st//lookup", true, false},
	} {
		if got := StationMay(tt.station, tt.topic, tt.write, in...); got != tt.want {
			t.Errorf("StationMay(%q, %q, write=%v, %v) = %v, want %v", tt.station, tt.topic, tt.write, in, got, tt.want)
		}
	}
	if StationMay("st-a", "lrs/v1/grp/warehouse/cmd", false) {
		t.Error("a station in no group may read a group")
	}
}

func TestStationMayPublish(t *testing.T) {
	for _, tt := range []struct {
		topic   string
		retain  bool
		payload string
		ok      bool
	}{
		{"lrs/v1/st/st-a/presence", true, `{"v":1,"station":"st-a","online":false}`, true},
		{"lrs/v1/st/st-a/presence", true, ``, true}, // clears its own retained presence
		{"lrs/v1/st/st-a/presence", true, `{"v":1,"station":"st-b","online":false}`, false},
		{"lrs/v1/st/st-a/presence", false, `not json`, false},
		{"lrs/v1/st/st-a/config/reported", true, `{}`, true},
		{"lrs/v1/st/st-a/lookup", false, `{}`, true},
		{"lrs/v1/st/st-a/lookup", true, `{}`, false},
		{"lrs/v1/st/st-a/job/status", true, `{}`, false},
		{"lrs/v1/st/st-a/telemetry", true, `{}`, false},
		{"lrs/v1/st/st-a/config/desired", true, `{}`, false},
		{"lrs/v1/st/st-a/job", false, `{}`, false},
		{"lrs/v1/st/st-b/job", false, `{}`, false},
		{"lrs/v1/st/st-b/config/desired", true, `{}`, false},
		{"lrs/v1/grp/warehouse/config/desired", true, `{}`, false},
	} {
		err := StationMayPublish("st-a", tt.topic, tt.retain, []byte(tt.payload))
		if (err == nil) != tt.ok {
			t.Errorf("StationMayPublish(st-a, %q, retain=%v, %s) = %v, want ok=%v", tt.topic, tt.retain, tt.payload, err, tt.ok)
		}
	}
}

func TestClaimsMayReplace(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		new, old Claims
		want     bool
	}{
		{"later generation, same clock", Claims{IssuedAt: t0, Generation: 5}, Claims{IssuedAt: t0, Generation: 4}, true},
		{"earlier generation", Claims{IssuedAt: t0.Add(time.Hour), Generation: 3}, Claims{IssuedAt: t0, Generation: 4}, false},
		{"same token", Claims{ID: "x", IssuedAt: t0, Generation: 4}, Claims{ID: "x", IssuedAt: t0, Generation: 4}, false},
		{"later iat, no generations", Claims{IssuedAt: t0.Add(time.Second)}, Claims{IssuedAt: t0}, true},
		{"same iat, no generations", Claims{ID: "b", IssuedAt: t0}, Claims{ID: "a", IssuedAt: t0}, false},
		{"nothing to compare", Claims{StationID: "st-a"}, Claims{StationID: "st-a"}, false},
		{"newer token of the same enrollment", Claims{Enrollment: "e1", EnrollmentSeq: 1, Generation: 9}, Claims{Enrollment: "e1", EnrollmentSeq: 1, Generation: 8}, true},
		{"newer token of an older enrollment", Claims{Enrollment: "e1", EnrollmentSeq: 1, Generation: 9}, Claims{Enrollment: "e2", EnrollmentSeq: 2, Generation: 8}, false},
		{"token of a later enrollment", Claims{Enrollment: "e2", EnrollmentSeq: 2, Generation: 9}, Claims{Enrollment: "e1", EnrollmentSeq: 1, Generation: 8}, true},
		{"other enrollment, no order", Claims{Enrollment: "e2", Generation: 9}, Claims{Enrollment: "e1", Generation: 8}, false},
	} {
		if got := tt.new.mayReplace(tt.old); got != tt.want {
			t.Errorf("%s: mayReplace = %v, want %v", tt.name, got, tt.want)
		}
	}
}
