package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the -fleet benchmark's child process too, as the bench-e2e
// binary is for itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-fleet-child" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The fleet memory benchmark on a few stations with each broker: every station enrolled, logged
// in (to Mosquitto with its station id and access token, checked by the deployed password-file
// setup), and online in devcloud's fleet registry through the job service; devcloud's and, with
// Mosquitto, the broker's memory read.
func TestBenchFleetBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts devcloud, a broker and a child process; skipped with -short")
	}
	for _, broker := range []string{"embedded", "mosquitto"} {
		t.Run(broker, func(t *testing.T) {
			res, err := benchFleet(fleetOptions{N: 5, Idle: 100 * time.Millisecond, Seed: "../../examples/devcloud-seed.json",
				Broker: broker, Deploy: "../../deploy/mosquitto"})
			if errors.Is(err, errNoMosquitto) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if broker == "mosquitto" && res.Mosquitto == 0 {
				t.Errorf("no Mosquitto memory read: %+v", res)
			}
		})
	}
}

// An unknown broker name is refused by name before anything starts.
func TestBenchFleetUnknownBroker(t *testing.T) {
	_, err := benchFleet(fleetOptions{N: 1, Seed: "../../examples/devcloud-seed.json", Broker: "nats"})
	if err == nil || !strings.Contains(err.Error(), `-fleet-broker "nats"`) {
		t.Fatalf("err %v, want one naming -fleet-broker", err)
	}
}
