package devcloud

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"labelstation/protocol"
)

// The Mosquitto ACL of docs/deploy-broker.md lets a station publish exactly the protocol's
// station → cloud leaves.
func TestMosquittoACLAllowsTheStationLeaves(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "deploy", "mosquitto", "lrs.acl"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(string(b), "\n") {
		if leaf, ok := strings.CutPrefix(strings.TrimSpace(line), "pattern write lrs/v1/st/%u/"); ok {
			got = append(got, leaf)
		}
	}
	want := protocol.StationLeaves()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("lrs.acl lets stations write %v, protocol lists %v", got, want)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "deploy-broker.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, leaf := range want {
		if !strings.Contains(string(doc), "pattern write lrs/v1/st/%u/"+leaf+"\n") {
			t.Errorf("docs/deploy-broker.md does not show the write rule for %s", leaf)
		}
	}
}
