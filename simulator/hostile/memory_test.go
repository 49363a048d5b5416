package hostile

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/simulator/harness"
)

// rssLimit is the collector's memory budget under attack (issue 8, "done
// when").
const rssLimit = 200 << 20

// stallFiller is how much of a claimed frame an attacker sends before it
// stalls: the first stream window QUIC grants (transport.QUICConfig).
const stallFiller = 1 << 20

// checkMemoryUnderAttack lets the attack settle, prints the collector's
// RSS, fails above rssLimit, and checks an honest agent (ИДК B) still
// gets its hello through.
func checkMemoryUnderAttack(t *testing.T, env *harness.Env, coll *harness.Proc) {
	t.Helper()
	time.Sleep(3 * time.Second) // let what was sent reach the collector
	now, peak, err := harness.RSS(coll.Pid())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("collector RSS under attack: %.1f MB now, %.1f MB peak (limit %d MB)", float64(now)/1e6, float64(peak)/1e6, rssLimit>>20)
	if peak >= rssLimit {
		t.Errorf("collector peak RSS %.1f MB, want under %d MB", float64(peak)/1e6, rssLimit>>20)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	honest, err := dial(ctx, env, idkB, nil)
	if err != nil {
		t.Errorf("an honest agent could not connect during the attack: %v", err)
		return
	}
	defer honest.close()
	if err := honest.hello(ctx, device(idkB, kodTO)); err != nil {
		t.Errorf("an honest agent's hello failed during the attack: %v", err)
	}
}

// Finding 4: 150 connections with one valid certificate open a hello
// stream whose first frame claims 4 MiB, send what flow control allows and
// stall. The collector must not buffer what they claim: it stays under
// 200 MB and an honest agent still gets in.
func TestMemoryStalledHellos(t *testing.T) {
	env, coll := startEnv(t, harness.Options{Agents: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base, _ := harness.RSS(coll.Pid())
	t.Logf("collector RSS before the attack: %.1f MB", float64(base)/1e6)

	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		opened, refused int
	)
	sem := make(chan struct{}, 16) // handshakes in flight: the test machine has 2 cores
	for range 150 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
			defer dcancel()
			c, err := dial(dctx, env, idkA, nil)
			if err == nil {
				t.Cleanup(c.close)
				// The hello stream: its first frame claims the most a
				// message may be, and never ends.
				st, err2 := c.conn.OpenStreamSync(dctx)
				if err = err2; err == nil {
					err = claimFrame(st, protocol.MaxMessageSize, stallFiller)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused++
			} else {
				opened++
			}
		}()
	}
	wg.Wait()
	t.Logf("stalled hellos: %d opened, %d refused at once", opened, refused)
	checkMemoryUnderAttack(t, env, coll)
}

// Finding 4: after a good hello, 63 file streams each offer a file, then
// send a frame header claiming 4 MiB, what flow control allows of it, and
// stall. The collector stays under 200 MB and an honest agent still gets
// in.
func TestMemoryStalledFileStreams(t *testing.T) {
	env, coll := startEnv(t, harness.Options{Agents: 2})
	_, base, _ := harness.RSS(coll.Pid())
	t.Logf("collector RSS before the attack: %.1f MB", float64(base)/1e6)
	c := connect(t, env, idkA)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	now := time.Now()
	snim := scanNumber(now, idkA, 1)

	var (
		wg                     sync.WaitGroup
		mu                     sync.Mutex
		stalled, notSend, errs int
		why                    string
	)
	for i := range 63 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
			defer scancel()
			name := fmt.Sprintf("%s_%d.raw", snim, i)
			o := &idkpb.FileOffer{NumSnim: snim, Name: name, Kind: idkpb.FileKind_FILE_KIND_RAW,
				Size: 64 << 20, Sha256: sum([]byte(name)), ScanTimeUnixNano: now.UnixNano()}
			f, rep, err := c.offer(sctx, o)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs++
			case rep.Status != idkpb.FileOfferReply_STATUS_SEND:
				notSend++
				why = rep.Status.String() + " " + rep.Error
			default:
				f.st.SetDeadline(time.Time{}) // the attacker's side never gives up
				if claimFrame(f.st, protocol.MaxMessageSize, stallFiller) == nil {
					stalled++
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("file streams: %d stalled mid-frame, %d offers not answered SEND (%s), %d failed", stalled, notSend, why, errs)
	checkMemoryUnderAttack(t, env, coll)
}
