package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"sync"
	"testing"

	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
)

// An agent's window: maxFileStreams files in flight on one connection,
// each of its lanes starting the next file the moment the last answer
// came. Every file is stored once, under its own name, and no stream is
// refused for want of a slot: the slot is free before the answer leaves.
func TestWindowOfFileStreamsBackToBack(t *testing.T) {
	f := start(t)
	conn, rep, err := f.dial(t, "850591", &idkpb.Device{NumIdk: "850591", KodTo: "10216100"})
	if err != nil || rep.Error != "" {
		t.Fatalf("hello: %v %q", err, rep.GetError())
	}
	defer conn.CloseWithError(0, "")
	const perLane = 6
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	send := func(name string) (string, error) {
		ctx := context.Background()
		st, err := conn.OpenStreamSync(ctx)
		if err != nil {
			return "", err
		}
		defer transport.EndStream(st)
		w, r := protocol.NewWriter(st), protocol.NewReader(st)
		data := []byte("content of " + name)
		sum := sha256.Sum256(data)
		w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_FILE})
		w.Write(&idkpb.FileOffer{NumSnim: "S1", Name: name, Kind: idkpb.FileKind_FILE_KIND_DOCUMENT, Size: uint64(len(data)), Sha256: sum[:]})
		var or idkpb.FileOfferReply
		if err := r.Read(&or); err != nil {
			return "", err
		}
		if or.Status != idkpb.FileOfferReply_STATUS_SEND {
			return "", fmt.Errorf("offer of %s: %v %q", name, or.Status, or.Error)
		}
		w.Write(&idkpb.FileData{Body: &idkpb.FileData_Chunk{Chunk: &idkpb.Chunk{Data: data, Crc32C: crc32.Checksum(data, castagnoli)}}})
		w.Write(&idkpb.FileData{Body: &idkpb.FileData_Commit{Commit: &idkpb.Commit{Sha256: sum[:]}}})
		var res idkpb.FileResult
		if err := r.Read(&res); err != nil {
			return "", err
		}
		if res.Error != "" {
			return "", fmt.Errorf("commit of %s: %s", name, res.Error)
		}
		return res.StoredAs, nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, maxFileStreams*perLane)
	for lane := range maxFileStreams {
		wg.Go(func() {
			for i := range perLane {
				name := fmt.Sprintf("doc_%02d_%d.jpg", lane, i)
				storedAs, err := send(name)
				if err != nil {
					errs <- err
					return
				}
				if want := "/S1/" + name; len(storedAs) < len(want) || storedAs[len(storedAs)-len(want):] != want {
					errs <- fmt.Errorf("%s stored as %q", name, storedAs)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	files, err := f.store.Files("850591")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != maxFileStreams*perLane {
		t.Fatalf("%d files indexed, want %d", len(files), maxFileStreams*perLane)
	}
}
