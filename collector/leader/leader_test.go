package leader_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"idk/collector/leader"
	"idk/internal/testenv"
)

const interval = 200 * time.Millisecond

// election is one call of lead.
type election struct {
	who  string
	term int64
	at   time.Time
}

// recorder is the lead of every runner of a test. It counts the leads
// under way, so that an overlap is seen at the instant it happens.
type recorder struct {
	mu      sync.Mutex
	leading int
	overlap []string
	ch      chan election
}

func newRecorder() *recorder { return &recorder{ch: make(chan election, 16)} }

func (r *recorder) lead(who string) func(context.Context, int64) {
	return func(ctx context.Context, term int64) {
		r.mu.Lock()
		r.leading++
		if r.leading > 1 {
			r.overlap = append(r.overlap, fmt.Sprintf("%s entered term %d while another led", who, term))
		}
		r.mu.Unlock()
		r.ch <- election{who, term, time.Now()}
		<-ctx.Done()
		r.mu.Lock()
		r.leading--
		r.mu.Unlock()
	}
}

func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.overlap {
		t.Error(o)
	}
}

// next waits up to d for an election.
func (r *recorder) next(t *testing.T, d time.Duration) election {
	t.Helper()
	select {
	case e := <-r.ch:
		return e
	case <-time.After(d):
		t.Fatalf("no one leads after %v", d)
		return election{}
	}
}

// none checks no one is elected within d.
func (r *recorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case e := <-r.ch:
		t.Fatalf("%s leads too, term %d", e.who, e.term)
	case <-time.After(d):
	}
}

type runner struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, dsn, who string, lead func(context.Context, int64)) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- leader.Run(ctx, leader.Config{DSN: dsn, Name: "deadlines", Interval: interval}, lead)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *runner) stop(t *testing.T) {
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(10 * time.Second):
		t.Error("Run did not return after its context ended")
	}
}

// TestFailover runs two campaigns in one process, cancels whichever leads,
// and starts a fresh one in its place, a few times over.
func TestFailover(t *testing.T) {
	dsn := testenv.Postgres(t)
	rec := newRecorder()
	runners := map[string]*runner{
		"a": start(t, dsn, "a", rec.lead("a")),
		"b": start(t, dsn, "b", rec.lead("b")),
	}
	cur := rec.next(t, 10*time.Second)
	rec.none(t, 3*interval)
	for round := range 3 {
		runners[cur.who].stop(t)
		stopped := time.Now()
		fresh := fmt.Sprintf("r%d", round)
		runners[fresh] = start(t, dsn, fresh, rec.lead(fresh))
		next := rec.next(t, 5*time.Second)
		took := next.at.Sub(stopped)
		t.Logf("round %d: %s (term %d) took over from %s (term %d) %v after it stopped", round, next.who, next.term, cur.who, cur.term, took)
		if next.who == cur.who {
			t.Fatalf("the stopped %s leads again", cur.who)
		}
		if next.term <= cur.term {
			t.Fatalf("term %d after term %d", next.term, cur.term)
		}
		if took > 3*interval {
			t.Errorf("takeover took %v, want about one Interval (%v)", took, interval)
		}
		rec.none(t, 2*interval)
		cur = next
	}
	rec.check(t)
}

// TestLostConnection ends the leader's session from the server side: the
// leader must notice at its next check, stop leading, and be elected
// again on a new connection with a new term.
func TestLostConnection(t *testing.T) {
	dsn := testenv.Postgres(t)
	rec := newRecorder()
	ended := make(chan time.Time, 4)
	start(t, dsn, "a", func(ctx context.Context, term int64) {
		rec.lead("a")(ctx, term)
		ended <- time.Now()
	})
	first := rec.next(t, 10*time.Second)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	killed := time.Now()
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("terminating the leader's session: %d sessions, %v", n, err)
	}
	select {
	case at := <-ended:
		t.Logf("lead's context ended %v after its session did", at.Sub(killed))
		if at.Sub(killed) > 3*interval {
			t.Errorf("lead ran on %v after its session ended", at.Sub(killed))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lead's context did not end after its session did")
	}
	again := rec.next(t, 5*time.Second)
	if again.term <= first.term {
		t.Fatalf("term %d after term %d", again.term, first.term)
	}
	rec.check(t)
}

const helperEnv = "IDK_LEADER_HELPER_DSN"

// TestHelperProcess is not a test: TestKilledLeader runs the test binary
// with it as a campaign of its own, to kill.
func TestHelperProcess(t *testing.T) {
	dsn := os.Getenv(helperEnv)
	if dsn == "" {
		return
	}
	err := leader.Run(context.Background(), leader.Config{DSN: dsn, Name: "deadlines", Interval: interval},
		func(ctx context.Context, term int64) {
			fmt.Printf("leading %d\n", term)
			<-ctx.Done()
		})
	t.Fatalf("Run: %v", err)
}

// TestKilledLeader SIGKILLs a leading process: its session closes with
// it, and the campaign of this one must take over.
func TestKilledLeader(t *testing.T) {
	dsn := testenv.Postgres(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dsn)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	childTerm := make(chan int64, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if f, ok := strings.CutPrefix(s.Text(), "leading "); ok {
				if n, err := strconv.ParseInt(f, 10, 64); err == nil {
					childTerm <- n
				}
			}
		}
	}()
	var term int64
	select {
	case term = <-childTerm:
	case <-time.After(30 * time.Second):
		t.Fatalf("the child did not lead; its stderr:\n%s", stderr.String())
	}

	rec := newRecorder()
	start(t, dsn, "parent", rec.lead("parent"))
	rec.none(t, 4*interval)
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to unlock
		t.Fatal(err)
	}
	e := rec.next(t, 3*time.Second)
	t.Logf("failover after SIGKILL of the leader: %v (Interval %v)", e.at.Sub(killed), interval)
	if e.term <= term {
		t.Fatalf("parent leads term %d after the child's %d", e.term, term)
	}
}

// TestFence checks a deposed leader's term is refused inside a
// transaction, and the current one accepted.
func TestFence(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	fence := func(term int64) error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		return leader.Fence(ctx, tx, "deadlines", term)
	}

	rec := newRecorder()
	a := start(t, dsn, "a", rec.lead("a"))
	first := rec.next(t, 10*time.Second)
	if err := fence(first.term); err != nil {
		t.Fatalf("fence of the current term: %v", err)
	}
	start(t, dsn, "b", rec.lead("b"))
	a.stop(t)
	second := rec.next(t, 5*time.Second)
	if err := fence(first.term); !errors.Is(err, leader.ErrDeposed) {
		t.Fatalf("fence of the old term %d after term %d: %v, want ErrDeposed", first.term, second.term, err)
	} else {
		t.Logf("old term: %v", err)
	}
	if err := fence(second.term); err != nil {
		t.Fatalf("fence of the current term: %v", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if err := leader.Fence(ctx, tx, "never-run", 1); !errors.Is(err, leader.ErrDeposed) {
		t.Fatalf("fence of a job never elected: %v, want ErrDeposed", err)
	}
	rec.check(t)
}

// TestFenceHoldsElection checks the promise of Fence's FOR SHARE: while a
// transaction that passed the fence is open, the next leader's term cannot
// begin, so the fenced writes come before it.
func TestFenceHoldsElection(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := context.Background()
	rec := newRecorder()
	a := start(t, dsn, "a", rec.lead("a"))
	first := rec.next(t, 10*time.Second)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if err := leader.Fence(ctx, tx, "deadlines", first.term); err != nil {
		t.Fatalf("fence: %v", err)
	}
	start(t, dsn, "b", rec.lead("b"))
	a.stop(t)
	rec.none(t, 4*interval)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if e := rec.next(t, 5*time.Second); e.term <= first.term {
		t.Fatalf("term %d after %d", e.term, first.term)
	}
	rec.check(t)
}
