package harness

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"idk/internal/testenv"
)

// The CI-sized chaos run (make chaos runs the full one): both daemons are
// SIGKILLed, the link is cut and the collector's disk filled while scans
// are written, and in the end nothing is lost, duplicated or corrupted.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run")
	}
	// The disk-full part needs root for its tmpfs. It is optional to the
	// run so that the rest of it is checked on any machine; whether it was
	// played is checked last.
	rep, err := Chaos(context.Background(), ChaosOptions{
		Dir: t.TempDir(), Bin: bin, Scans: 60, Interval: 100 * time.Millisecond,
		AgentKills: 5, CollectorKills: 5, Outages: 2, MaxOutage: 2 * time.Second, DiskFulls: 1,
		Seed: 7, Drain: 2 * time.Minute, DiskFullOptional: true,
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	if !rep.Intact() {
		t.Fatalf("chaos lost data:\n%s", rep)
	}
	if rep.AgentKills != 5 || rep.CollectorKills != 5 || rep.Outages != 2 {
		t.Fatalf("not every fault was played:\n%s", rep)
	}
	testenv.Require(t, rep.DiskFullSkipped == "", "the disk-full part of the chaos run was not played: "+rep.DiskFullSkipped)
	if rep.DiskFulls != 1 {
		t.Fatalf("collector disk filled %d times, want 1:\n%s", rep.DiskFulls, rep)
	}
}

// A run that could not fill the disk says so, and is not OK unless the
// disk-full part was optional.
func TestChaosReportSkippedDiskFull(t *testing.T) {
	rep := ChaosReport{Written: 3, Stored: 3, Files: 6, FilesStored: 6, DiskFullsRequested: 3,
		DiskFullSkipped: "cannot mount a tmpfs: exit status 32: mount: only root can do that"}
	if rep.OK() {
		t.Error("OK with the disk-full faults skipped and not optional")
	}
	if !strings.Contains(rep.String(), "DISK-FULL FAULTS NOT PLAYED: cannot mount a tmpfs") ||
		!strings.Contains(rep.String(), "disk full 0 of 3 times") {
		t.Errorf("the report does not say the disk-full faults were skipped:\n%s", rep)
	}
	rep.DiskFullOptional = true
	if !rep.OK() {
		t.Error("not OK with the disk-full faults skipped but optional")
	}
	rep.DiskFullSkipped, rep.DiskFullOptional, rep.DiskFulls = "", false, 3
	if !rep.OK() || strings.Contains(rep.String(), "NOT PLAYED") {
		t.Errorf("a full run: OK %v\n%s", rep.OK(), rep)
	}
	rep.Lost = 1
	if rep.OK() {
		t.Error("OK with a file lost")
	}
}
