package main

import (
	"net"
	"strings"
	"testing"
)

func TestTakenPortNamesTheFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = listen(ln.Addr().String(), "mqtt")
	if err == nil || !strings.Contains(err.Error(), "--mqtt") || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("listen on a taken port: %v", err)
	}
}

func TestRunRejectsBadSeed(t *testing.T) {
	err := run(flags{Seed: "testdata/does-not-exist.json", HTTP: "127.0.0.1:0", MQTT: "127.0.0.1:0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--seed") {
		t.Fatalf("run with a missing seed: %v", err)
	}
}

func TestRunRejectsBadStore(t *testing.T) {
	err := run(flags{Seed: "../../examples/devcloud-seed.json", Store: "sqlite:x.db", HTTP: "127.0.0.1:0", MQTT: "127.0.0.1:0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--store") || !strings.Contains(err.Error(), "bolt:PATH") {
		t.Fatalf("run with a bad --store: %v", err)
	}
}
