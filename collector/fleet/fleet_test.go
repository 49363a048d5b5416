package fleet

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"idk/simulator/simclock"
)

var start = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

func TestStatusFollowsTheConnection(t *testing.T) {
	clk := simclock.New(start)
	f := New(clk)
	if _, ok := f.Get("850591"); ok {
		t.Fatal("an agent never connected is known")
	}
	notAfter := start.Add(365 * 24 * time.Hour)
	f.Connected("850591", "10216100", "1.4.0", "192.0.2.7:50123", "quic", notAfter)
	f.SetClockOffset("850591", -7*time.Minute)
	clk.Advance(10 * time.Second)
	f.Seen("850591")
	f.SetBacklog("850591", 3, 4096, start.Add(-time.Hour))

	want := Status{
		NumIDK: "850591", KodTO: "10216100", AgentVersion: "1.4.0", Connected: true,
		Remote: "192.0.2.7:50123", Transport: "quic", LastSeen: start.Add(10 * time.Second),
		ClockOffset: -7 * time.Minute, BacklogFiles: 3, BacklogBytes: 4096,
		OldestUnsent: start.Add(-time.Hour), CertNotAfter: notAfter,
	}
	if got, ok := f.Get("850591"); !ok || got != want {
		t.Fatalf("Get = %+v, %v\nwant %+v", got, ok, want)
	}

	clk.Advance(time.Minute)
	f.Disconnected("850591")
	got, ok := f.Get("850591")
	want.Connected = false
	if !ok || got != want {
		t.Fatalf("after the disconnection: %+v, want %+v (kept, not connected, last seen unchanged)", got, want)
	}
}

// A reconnecting agent's new connection is accepted before the server
// closes the old one: the old one's end must not mark it disconnected.
func TestReplacedConnectionKeepsTheAgentConnected(t *testing.T) {
	f := New(simclock.New(start))
	f.Connected("850591", "10216100", "1.4.0", "192.0.2.7:1", "quic", start)
	f.Connected("850591", "10216100", "1.4.0", "192.0.2.7:2", "quic", start)
	f.Disconnected("850591")
	if st, _ := f.Get("850591"); !st.Connected || st.Remote != "192.0.2.7:2" {
		t.Fatalf("after the old connection ended: %+v, want connected from the new address", st)
	}
	f.Disconnected("850591")
	if st, _ := f.Get("850591"); st.Connected {
		t.Fatal("connected after both connections ended")
	}
	// An unknown agent's end is no one's business, and one too many
	// leaves the count at zero: the next connection counts again.
	f.Disconnected("850599")
	f.Disconnected("850591")
	f.Connected("850591", "10216100", "1.4.0", "192.0.2.7:3", "quic", start)
	if st, _ := f.Get("850591"); !st.Connected {
		t.Fatal("not connected after a new hello")
	}
	if _, ok := f.Get("850599"); ok {
		t.Fatal("Disconnected created an agent")
	}
}

func TestAllIsSortedByNumIDK(t *testing.T) {
	f := New(simclock.New(start))
	for _, n := range []string{"850593", "850591", "850592"} {
		f.Connected(n, "10216100", "1.4.0", "", "quic", start)
	}
	var got []string
	for _, st := range f.All() {
		got = append(got, st.NumIDK)
	}
	if strings.Join(got, ",") != "850591,850592,850593" {
		t.Fatalf("All = %v", got)
	}
}

func TestMetrics(t *testing.T) {
	clk := simclock.New(start)
	f := New(clk)
	c := f.Collector()
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Fatalf("%d series with no agent", n)
	}
	notAfter := time.Date(2027, 11, 28, 0, 0, 0, 0, time.UTC)
	f.Connected("850591", "10216100", "1.4.0", "192.0.2.7:50123", "quic", notAfter)
	f.SetBacklog("850591", 12, 34<<20, start.Add(-90*time.Second))
	f.Connected("850592", "10216200", "1.4.0", "192.0.2.8:50123", "quic", notAfter)
	f.SetBacklog("850592", 0, 0, time.Time{})
	f.Disconnected("850592")
	clk.Advance(30 * time.Second)

	want := `
# HELP idk_collector_agent_backlog_bytes Bytes of the scan files waiting in the agent's spool, as it last reported.
# TYPE idk_collector_agent_backlog_bytes gauge
idk_collector_agent_backlog_bytes{kod_to="10216100",num_idk="850591"} 3.5651584e+07
idk_collector_agent_backlog_bytes{kod_to="10216200",num_idk="850592"} 0
# HELP idk_collector_agent_backlog_files Scan files waiting in the agent's spool, as it last reported.
# TYPE idk_collector_agent_backlog_files gauge
idk_collector_agent_backlog_files{kod_to="10216100",num_idk="850591"} 12
idk_collector_agent_backlog_files{kod_to="10216200",num_idk="850592"} 0
# HELP idk_collector_agent_certificate_expiry_timestamp_seconds When the certificate the agent last connected with expires.
# TYPE idk_collector_agent_certificate_expiry_timestamp_seconds gauge
idk_collector_agent_certificate_expiry_timestamp_seconds{kod_to="10216100",num_idk="850591"} 1.82736e+09
idk_collector_agent_certificate_expiry_timestamp_seconds{kod_to="10216200",num_idk="850592"} 1.82736e+09
# HELP idk_collector_agent_connected 1 while the agent has a connection past its hello, 0 after it ended.
# TYPE idk_collector_agent_connected gauge
idk_collector_agent_connected{kod_to="10216100",num_idk="850591"} 1
idk_collector_agent_connected{kod_to="10216200",num_idk="850592"} 0
# HELP idk_collector_agent_oldest_unsent_age_seconds Age of the oldest item waiting in the agent's spool, as it last reported; 0 when nothing waits.
# TYPE idk_collector_agent_oldest_unsent_age_seconds gauge
idk_collector_agent_oldest_unsent_age_seconds{kod_to="10216100",num_idk="850591"} 120
idk_collector_agent_oldest_unsent_age_seconds{kod_to="10216200",num_idk="850592"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if notAfter.Unix() != 1827360000 {
		t.Fatalf("test's expiry is %d, the expected text says 1827360000", notAfter.Unix())
	}

	// The age grows with the clock, between reports.
	clk.Advance(time.Hour)
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP idk_collector_agent_oldest_unsent_age_seconds Age of the oldest item waiting in the agent's spool, as it last reported; 0 when nothing waits.
# TYPE idk_collector_agent_oldest_unsent_age_seconds gauge
idk_collector_agent_oldest_unsent_age_seconds{kod_to="10216100",num_idk="850591"} 3720
idk_collector_agent_oldest_unsent_age_seconds{kod_to="10216200",num_idk="850592"} 0
`), "idk_collector_agent_oldest_unsent_age_seconds"); err != nil {
		t.Fatal(err)
	}

	// An oldest item dated in the future (an agent's clock corrected by
	// its offset) is no negative age.
	f.SetBacklog("850591", 1, 1, clk.Now().Add(time.Minute))
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP idk_collector_agent_oldest_unsent_age_seconds Age of the oldest item waiting in the agent's spool, as it last reported; 0 when nothing waits.
# TYPE idk_collector_agent_oldest_unsent_age_seconds gauge
idk_collector_agent_oldest_unsent_age_seconds{kod_to="10216100",num_idk="850591"} 0
idk_collector_agent_oldest_unsent_age_seconds{kod_to="10216200",num_idk="850592"} 0
`), "idk_collector_agent_oldest_unsent_age_seconds"); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// Metric names the server exports already must not appear twice: a
// registry refuses a second collector of the same name.
func TestMetricsDoNotDuplicateTheServers(t *testing.T) {
	f := New(simclock.New(start))
	f.Connected("850591", "10216100", "1.4.0", "", "quic", start)
	f.SetClockOffset("850591", time.Second)
	f.Seen("850591")
	for _, name := range []string{"idk_collector_device_last_seen_timestamp_seconds", "idk_collector_device_clock_offset_seconds"} {
		if n := testutil.CollectAndCount(f.Collector(), name); n != 0 {
			t.Errorf("fleet exports %s", name)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	clk := simclock.New(start)
	f := New(clk)
	c := f.Collector()
	var wg sync.WaitGroup
	for i := range 8 {
		n := []string{"850591", "850592"}[i%2]
		wg.Go(func() {
			for range 200 {
				f.Connected(n, "10216100", "1.4.0", "", "quic", start)
				f.Seen(n)
				f.SetBacklog(n, 1, 2, start)
				f.SetClockOffset(n, time.Second)
				f.All()
				f.Disconnected(n)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			testutil.CollectAndCount(c)
			clk.Advance(time.Second)
		}
	})
	wg.Wait()
	for _, n := range []string{"850591", "850592"} {
		if st, ok := f.Get(n); !ok || st.Connected {
			t.Errorf("%s: %+v, %v; want known and disconnected after as many ends as hellos", n, st, ok)
		}
	}
}
