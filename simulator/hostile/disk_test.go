package hostile

import (
	"context"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"idk/protocol/idkpb"
	"idk/simulator/harness"
)

// freeBytes is the space an unprivileged writer may use in dir.
func freeBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// Finding 5: the disk reserve cannot be talked round. An offer whose size
// wraps the free-space arithmetic is refused though the disk has room, the
// refusal gives away no figures and no paths, and offers made at the same
// time are not all promised space the disk does not have beyond the
// reserve.
func TestDiskReserveCannotWrapOrOvercommit(t *testing.T) {
	dir := t.TempDir()
	// Leave 256 MiB above the reserve: room for four of the 64 MiB offers
	// below, not for eight. The machine is shared, so the figure moves a
	// little; the checks allow for one offer's worth of it.
	const headroom = 256 << 20
	free := freeBytes(t, dir)
	if free < 2*headroom {
		t.Skipf("only %d MB free", free>>20)
	}
	minFree := free - headroom
	env, _ := startEnv(t, harness.Options{CollectorRoot: dir + "/collector-data", CollectorMinFree: minFree})
	c := connect(t, env, idkA)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now()
	// Letters only, so any digit in a refusal is a figure the collector gave
	// away.
	const snim = "HOSTILEDISK"

	for _, size := range []uint64{-minFree, math.MaxUint64} { // 2^64 - min_free, 2^64 - 1
		o := &idkpb.FileOffer{NumSnim: snim, Name: "huge.raw", Kind: idkpb.FileKind_FILE_KIND_RAW,
			Size: size, Sha256: sum([]byte("huge")), ScanTimeUnixNano: now.UnixNano()}
		f, rep, err := c.offer(ctx, o)
		if err != nil {
			t.Fatalf("offer of %d bytes: %v", size, err)
		}
		f.end()
		if rep.Status == idkpb.FileOfferReply_STATUS_SEND || rep.Status == idkpb.FileOfferReply_STATUS_HAVE {
			t.Errorf("offer of %d bytes answered %v; want it refused", size, rep.Status)
			continue
		}
		if strings.ContainsAny(rep.Error, "0123456789") || strings.Contains(rep.Error, "/") {
			t.Errorf("refusal of %d bytes gives away figures or a path: %q", size, rep.Error)
		}
		t.Logf("offer of %d bytes: %v %q", size, rep.Status, rep.Error)
	}

	// Eight offers of 64 MiB at once; none sends a byte, so only what the
	// collector promises counts.
	const n, each = 8, 64 << 20
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		sends int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "concurrent-" + string(rune('a'+i)) + ".jpg"
			o := &idkpb.FileOffer{NumSnim: snim, Name: name, Kind: idkpb.FileKind_FILE_KIND_DOCUMENT,
				Size: each, Sha256: sum([]byte(name)), ScanTimeUnixNano: now.UnixNano()}
			f, rep, err := c.offer(ctx, o)
			if err != nil {
				t.Errorf("offer %s: %v", name, err)
				return
			}
			// Keep the stream open: an upload in progress holds its
			// promise until the test ends.
			t.Cleanup(f.end)
			if rep.Status == idkpb.FileOfferReply_STATUS_SEND {
				mu.Lock()
				sends++
				mu.Unlock()
			} else if strings.ContainsAny(rep.Error, "0123456789") || strings.Contains(rep.Error, "/") {
				t.Errorf("refusal gives away figures or a path: %q", rep.Error)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d of %d concurrent %d MiB offers told SEND with %d MiB above the reserve", sends, n, each>>20, headroom>>20)
	if sends == n {
		t.Errorf("all %d offers of %d MiB told SEND, %d MiB in all, with %d MiB free above the reserve", n, each>>20, n*each>>20, headroom>>20)
	} else if sends > headroom/each+1 {
		t.Errorf("%d offers of %d MiB told SEND with %d MiB free above the reserve", sends, each>>20, headroom>>20)
	}
}
