package broker

import "testing"

func TestStationMay(t *testing.T) {
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
		{"st-a", "lrs/v1/grp/+/cmd", false, false},
		{"st-a", "lrs/v1/grp/warehouse/cmd", true, false},
		{"st-a", "#", false, false},
		{"st+", "lrs/v1/st/st+/lookup", true, false},
		{"", "lrs/v1/st//lookup", true, false},
	} {
		if got := StationMay(tt.station, tt.topic, tt.write); got != tt.want {
			t.Errorf("StationMay(%q, %q, write=%v) = %v, want %v", tt.station, tt.topic, tt.write, got, tt.want)
		}
	}
}
