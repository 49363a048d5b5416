// Package leader elects, among the collectors sharing a PostgreSQL database, the one that runs
// a region-wide job (the deadline engine): whoever holds a session-level advisory lock. The lock
// goes with the holder's connection, so a killed collector loses it as soon as its connection closes.
//
// Each election also increments the job's term in the table idk_leader,
// so that writes a deposed leader makes late (after its connection died
// but before it noticed) can be refused: Fence checks, inside the
// writer's transaction, that its term is still the current one.
package leader

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"idk/internal/clock"
)

// ErrDeposed is wrapped by Fence's error when another election has
// happened since the caller's.
var ErrDeposed = errors.New("leader: deposed")

// Config configures a campaign.
type Config struct {
	DSN      string
	Name     string        // the job, e.g. "deadlines": hashed to the lock key
	Interval time.Duration // how often a follower tries and a leader checks its connection; default 1s
	Clock    clock.Clock   // default clock.Real
	Logger   *slog.Logger  // default: discard
}

// schemaLock is the key of the transaction-level advisory lock taken
// around creating idk_leader, so that collectors starting together do not
// race in CREATE TABLE IF NOT EXISTS (which can fail on a concurrent
// create). It is the ASCII of "idk_lead".
const schemaLock int64 = 0x69646b5f6c656164

const createTable = `CREATE TABLE IF NOT EXISTS idk_leader (
	name text PRIMARY KEY,
	term bigint NOT NULL,
	holder text NOT NULL,
	since timestamptz NOT NULL
)`

// newTerm records an election: the first term of a name is 1.
const newTerm = `INSERT INTO idk_leader AS l (name, term, holder, since) VALUES ($1, 1, $2, now())
	ON CONFLICT (name) DO UPDATE SET term = l.term + 1, holder = excluded.holder, since = excluded.since
	RETURNING term`

// LockKey is the advisory lock key of the job name: the FNV-1a hash of
// "idk/leader/" and name, so that jobs, and other users of advisory locks
// that pick their keys differently, do not collide in practice.
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("idk/leader/" + name))
	return int64(h.Sum64())
}

// Run campaigns until ctx ends. Whenever this process holds the lock, it calls lead with a context
// that is cancelled when the lock may be lost (the connection fails a check, or ctx ends), and with
// the term: a number that grows with every election in the database (kept in a table
// idk_leader(name text primary key, term bigint, holder text, since timestamptz), incremented in the same
// session right after the lock is taken). lead must return when its context ends. Run returns ctx's error
// (or, at once, the error of a cfg.DSN it cannot parse).
//
// The lock is given up only after lead has returned, so two leads never
// overlap while connections are alive. If lead returns while its context
// is live, Run gives the lock up too and campaigns again after Interval.
// A leader whose network fails stops, through the failed check, within
// about two Intervals; the server notices the dead connection, through
// the TCP keepalives Run asks for on the session, and frees the lock only
// after several more, so even then the next leader starts after the last
// one stopped — Fence is for what slips through anyway.
func Run(ctx context.Context, cfg Config, lead func(ctx context.Context, term int64)) error {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	connCfg, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	if _, ok := connCfg.RuntimeParams["application_name"]; !ok {
		connCfg.RuntimeParams["application_name"] = "idk leader " + cfg.Name
	}
	// The server's side of the keepalives: a session that stops answering
	// ends, and frees the lock, keepIdle plus three probes a second apart
	// after its last packet — well after the leader's own check has
	// failed (a check every Interval, timing out after Interval).
	keepIdle := max(5*cfg.Interval, 5*time.Second)
	connCfg.RuntimeParams["tcp_keepalives_idle"] = strconv.Itoa(int(keepIdle / time.Second))
	connCfg.RuntimeParams["tcp_keepalives_interval"] = "1"
	connCfg.RuntimeParams["tcp_keepalives_count"] = "3"

	host, _ := os.Hostname()
	c := &campaign{
		cfg:    cfg,
		conn:   connCfg,
		key:    LockKey(cfg.Name),
		holder: host + ":" + strconv.Itoa(os.Getpid()),
		log:    cfg.Logger.With("job", cfg.Name),
	}
	for {
		err := c.once(ctx, lead)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errLeadReturned) {
			c.log.Info("leader: lead returned; giving the lock up", "err", err)
		} else {
			c.log.Warn("leader: campaign failed; trying again", "err", err)
		}
		if err := clock.Sleep(ctx, cfg.Clock, cfg.Interval); err != nil {
			return err
		}
	}
}

var errLeadReturned = errors.New("lead returned before its context ended")

type campaign struct {
	cfg    Config
	conn   *pgx.ConnConfig
	key    int64
	holder string
	log    *slog.Logger
}

// once campaigns on one connection until it fails or ctx ends, leading
// for as long as it holds the lock. It never returns nil.
func (c *campaign) once(ctx context.Context, lead func(context.Context, int64)) error {
	conn, err := pgx.ConnectConfig(ctx, c.conn)
	if err != nil {
		return fmt.Errorf("leader: connect: %w", err)
	}
	defer func() {
		// Closing the session is what frees the lock; a context of its
		// own, as ctx may have ended.
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if err := createSchema(ctx, conn); err != nil {
		return err
	}

	for {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", c.key).Scan(&got); err != nil {
			return fmt.Errorf("leader: try lock: %w", err)
		}
		if got {
			break
		}
		if err := clock.Sleep(ctx, c.cfg.Clock, c.cfg.Interval); err != nil {
			return err
		}
	}
	var term int64
	if err := conn.QueryRow(ctx, newTerm, c.cfg.Name, c.holder).Scan(&term); err != nil {
		return fmt.Errorf("leader: new term: %w", err)
	}
	c.log.Info("leader: leading", "term", term)

	leadCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(leadCtx, term)
	}()
	// Runs before the connection closes: lead has stopped before the
	// lock is free for another.
	defer func() {
		cancel()
		<-done
		c.log.Info("leader: stopped leading", "term", term)
	}()

	t := c.cfg.Clock.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return fmt.Errorf("leader: term %d: %w", term, errLeadReturned)
		case <-t.C():
		}
		// A live session holds its locks, so a cheap query that
		// answers in time is enough; a timeout is a deadline handed to
		// the network, on the wall clock.
		checkCtx, cancelCheck := context.WithTimeout(ctx, c.cfg.Interval)
		_, err := conn.Exec(checkCtx, "SELECT 1")
		cancelCheck()
		if err != nil {
			return fmt.Errorf("leader: term %d: connection check: %w", term, err)
		}
	}
}

func createSchema(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("leader: create idk_leader: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it does nothing
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLock); err != nil {
		return fmt.Errorf("leader: create idk_leader: %w", err)
	}
	if _, err := tx.Exec(ctx, createTable); err != nil {
		return fmt.Errorf("leader: create idk_leader: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("leader: create idk_leader: %w", err)
	}
	return nil
}

// Querier is what Fence reads through: a pgx.Tx, or a pgx.Conn or pool in
// a transaction begun by SQL.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Fence returns an error wrapping ErrDeposed unless term is still the current term of name in the
// database, read inside the caller's transaction (a pgx.Tx or anything with QueryRow) — for a deposed
// leader's late writes.
//
// It reads the term FOR SHARE, so the row stays locked until the caller's
// transaction ends: a new election, which updates the row, waits for it,
// and the writes the fence let through commit before the new leader's
// term begins. q must therefore be in a read-write transaction, and the
// transaction should be short.
func Fence(ctx context.Context, q Querier, name string, term int64) error {
	var current int64
	err := q.QueryRow(ctx, "SELECT term FROM idk_leader WHERE name = $1 FOR SHARE", name).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("leader: %s was never elected, term %d is not current: %w", name, term, ErrDeposed)
	}
	if err != nil {
		return fmt.Errorf("leader: fence %s: %w", name, err)
	}
	if current != term {
		return fmt.Errorf("leader: term %d of %s is over, the current is %d: %w", term, name, current, ErrDeposed)
	}
	return nil
}
