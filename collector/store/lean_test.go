package store

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"idk/collector/kv"
	"idk/protocol/idkpb"
)

// commits is the index's last committed transaction id: each write
// transaction's commit (and fsync) adds one.
func commits(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	if err := s.bolt.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestStoreOfferOfKnownContentCommitsNothing(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	data := bytes.Repeat([]byte("scan"), 10000)
	o := offerFor("S1", "S1_1.raw", data)

	before := commits(t, s)
	if _, err := send(t, s, o, data, 4096); err != nil {
		t.Fatal(err)
	}
	if n := commits(t, s) - before; n != 2 {
		t.Fatalf("a new file took %d index commits, want 2 (offer, record)", n)
	}

	// The collector has it: the answer changes nothing, so no commit.
	before = commits(t, s)
	up, rep, err := s.Offer(dev, o, t0)
	if err != nil || up != nil || rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
		t.Fatalf("offer of a stored file: %v %v %v", up, rep, err)
	}
	if n := commits(t, s) - before; n != 0 {
		t.Fatalf("offer of a stored file committed %d write transactions", n)
	}

	// A resume: the name is reserved already, the offer only reads.
	o2 := offerFor("S1", "S1_2.raw", data)
	up, _, err = s.Offer(dev, o2, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Write(chunk(data[:1000], 0)); err != nil {
		t.Fatal(err)
	}
	up.Close()
	before = commits(t, s)
	up, rep, err = s.Offer(dev, o2, t0)
	if err != nil || rep.Status != idkpb.FileOfferReply_STATUS_SEND || rep.Offset != 1000 {
		t.Fatalf("resumed offer: %v %v", rep, err)
	}
	up.Close()
	if n := commits(t, s) - before; n != 0 {
		t.Fatalf("resumed offer committed %d write transactions", n)
	}
}

func TestStorePutDeviceUnchangedCommitsNothing(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	d := &idkpb.Device{NumIdk: "850591", KodTo: "10216100", NaimTo: "A"}
	if err := s.PutDevice(d); err != nil {
		t.Fatal(err)
	}
	before := commits(t, s)
	if err := s.PutDevice(d); err != nil {
		t.Fatal(err)
	}
	if n := commits(t, s) - before; n != 0 {
		t.Fatalf("the same hello again committed %d write transactions", n)
	}
	d2 := &idkpb.Device{NumIdk: "850591", KodTo: "10216100", NaimTo: "B"}
	if err := s.PutDevice(d2); err != nil {
		t.Fatal(err)
	}
	if n := commits(t, s) - before; n != 1 {
		t.Fatalf("a changed device took %d commits, want 1", n)
	}
	devs, err := s.Devices()
	if err != nil || len(devs) != 1 || devs[0].NaimTo != "B" {
		t.Fatalf("devices: %v %v", devs, err)
	}
}

func TestStoreDuplicateBatchCommitsNothing(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	batch := func(seqs ...uint64) []*idkpb.Event {
		var evs []*idkpb.Event
		for _, q := range seqs {
			evs = append(evs, &idkpb.Event{Seq: q, TimeUnixNano: t0.UnixNano(), Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: fmt.Sprint("S", q)}}})
		}
		return evs
	}
	if res, err := s.PutEvents(dev, 1, batch(1, 2), agent, nil); err != nil || res.Stored != 2 {
		t.Fatalf("first batch: %+v %v", res, err)
	}
	before := commits(t, s)
	res, err := s.PutEvents(dev, 1, batch(1, 2), agent, nil)
	if err != nil || res.Stored != 0 || res.Duplicates != 2 || len(res.New) != 0 {
		t.Fatalf("batch again: %+v %v", res, err)
	}
	if n := commits(t, s) - before; n != 0 {
		t.Fatalf("a batch of duplicates committed %d write transactions", n)
	}
	res, err = s.PutEvents(dev, 1, batch(2, 3), agent, nil)
	if err != nil || res.Stored != 1 || res.Duplicates != 1 {
		t.Fatalf("half new batch: %+v %v", res, err)
	}
	if n := commits(t, s) - before; n != 1 {
		t.Fatalf("a batch with a new event took %d commits, want 1", n)
	}
}

// holdLeader starts an update that stays inside its transaction until
// release is closed, then queues the updates fns behind it and waits
// until they are all queued: the next commit holds them all.
func holdLeader(t *testing.T, g *groupCommit, fns []func(kv.Tx) error) (release chan struct{}, results chan error) {
	t.Helper()
	release, inside := make(chan struct{}), make(chan struct{})
	results = make(chan error, len(fns)+1)
	go func() {
		results <- g.update(func(tx kv.Tx) error {
			close(inside)
			<-release
			return tx.Put("t", []byte("leader"), []byte("v"))
		})
	}()
	<-inside
	for _, fn := range fns {
		go func() { results <- g.update(fn) }()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		n := len(g.queue)
		g.mu.Unlock()
		if n == len(fns) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d updates queued", n, len(fns))
		}
	}
	return release, results
}

func putKey(key string) func(kv.Tx) error {
	return func(tx kv.Tx) error { return tx.Put("t", []byte(key), []byte("v")) }
}

// Updates that arrive while a commit runs share the next one, and each
// returns only once that commit is done.
func TestGroupCommitSharesOneCommit(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	const n = 8
	var fns []func(kv.Tx) error
	for i := range n {
		fns = append(fns, putKey(fmt.Sprint("k", i)))
	}
	before := commits(t, s)
	release, results := holdLeader(t, &s.group, fns)
	close(release)
	for range n + 1 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if c := commits(t, s) - before; c != 2 {
		t.Fatalf("%d updates took %d commits, want 2 (the one under way, then all the rest)", n+1, c)
	}
	err := s.db.View(func(tx kv.Tx) error {
		for i := range n {
			if v, err := tx.Get("t", []byte(fmt.Sprint("k", i))); err != nil || v == nil {
				return fmt.Errorf("k%d missing after its update returned (%v)", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.group.mu.Lock()
	busy := s.group.busy
	s.group.mu.Unlock()
	if busy {
		t.Fatal("group still busy with nothing queued: the next update would wait forever")
	}
}

// One failing update gets its own error and leaves nothing; the others in
// its transaction are committed without it.
func TestGroupCommitIsolatesAFailure(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	bad := errors.New("bad update")
	release, results := holdLeader(t, &s.group, []func(kv.Tx) error{
		putKey("a"),
		func(tx kv.Tx) error {
			if err := putKey("bad")(tx); err != nil {
				return err
			}
			return bad
		},
		putKey("b"),
	})
	close(release)
	var errs []error
	for range 4 {
		errs = append(errs, <-results)
	}
	nbad := 0
	for _, err := range errs {
		switch {
		case errors.Is(err, bad):
			nbad++
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if nbad != 1 {
		t.Fatalf("errors %v: want the failing update's own, once", errs)
	}
	err := s.db.View(func(tx kv.Tx) error {
		get := func(k string) []byte { v, _ := tx.Get("t", []byte(k)); return v }
		if get("a") == nil || get("b") == nil {
			return errors.New("the good updates were not committed")
		}
		if get("bad") != nil {
			return errors.New("the failed update's write was committed")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Files of a window in flight, committed at once: each stored, indexed,
// and durable (still there after the index is closed and opened again).
func TestStoreConcurrentUploadsAllRecorded(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	before := commits(t, s)
	for i := range n {
		wg.Go(func() {
			data := bytes.Repeat([]byte{byte(i)}, 5000+i)
			if _, err := send(t, s, offerFor("S9", fmt.Sprintf("f%d.raw", i), data), data, 1024); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if c := commits(t, s) - before; c > 2*n {
		t.Fatalf("%d files took %d commits, more than two each", n, c)
	}
	s.Close()
	s = openStore(t, root)
	defer s.Close()
	files, err := s.Files(dev.NumIdk)
	if err != nil || len(files) != n {
		t.Fatalf("%d files indexed after reopening, want %d: %v", len(files), n, err)
	}
}
