package broker

import (
	"maps"
	"slices"
	"testing"

	"labelstation/protocol"
)

// The broker lets a station publish exactly the leaves the protocol says stations publish: a
// leaf added to one and not the other would be silently dropped or wrongly allowed.
func TestStationWritesAreTheProtocolsStationLeaves(t *testing.T) {
	got := slices.Sorted(maps.Keys(stationWrites))
	want := protocol.StationLeaves()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("broker allows %v, protocol lists %v", got, want)
	}
}
