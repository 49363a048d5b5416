package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"idk/protocol/transport"
)

// The bare quic-go peer of PeerBench: the least a QUIC+mTLS receiver must
// do to take a file and vouch for it — write it, hash it, fsync it, answer
// with the hash — with the project's QUIC tuning and the same kind of
// certificates, and nothing else (no index, no spool, no protocol
// messages). It runs as two idk-sim processes, so that each end's CPU is
// measured on its own, as the agent's and the collector's are.
//
// One stream per file: a big-endian uint16 name length, the base name, the
// bytes, FIN; the receiver answers with the hex SHA-256 and a newline, FIN.

// peerALPN keeps the bare peer from ever being mistaken for the real
// protocol (protocol.ALPN).
const peerALPN = "idk-peerbench"

// peerBuf is the read size of both ends: large reads keep the per-call
// costs out of the figure, as a real shipper's would.
const peerBuf = 1 << 20

// PeerQUICOptions are the files of one end of the bare quic-go peer.
type PeerQUICOptions struct {
	Addr           string // the receiver listens, the sender dials
	CA, Cert, Key  string // PEM files: the collector's for the receiver, an agent's for the sender
	ServerName     string // sender: a name in the receiver's certificate
	Dir            string // receiver: where the files go
	Files          int    // receiver: files to take before it ends
	ReadyFile      string // receiver: created once it listens
	Streams        int    // sender: files in flight at once; default 32, the agent's window
	Paths          []string
	ConnectTimeout time.Duration
}

// PeerQUICRecv takes o.Files files on one connection, each on its own
// stream, and ends once the sender has closed the connection.
func PeerQUICRecv(ctx context.Context, o PeerQUICOptions) error {
	tlsConf, err := transport.ServerTLS(o.Cert, o.Key, o.CA)
	if err != nil {
		return err
	}
	tlsConf.NextProtos = []string{peerALPN}
	ln, err := quic.ListenAddr(o.Addr, tlsConf, transport.QUICConfig())
	if err != nil {
		return fmt.Errorf("peer-quic-recv: listen: %w", err)
	}
	defer ln.Close()
	if o.ReadyFile != "" {
		if err := os.WriteFile(o.ReadyFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return err
		}
	}
	conn, err := ln.Accept(ctx)
	if err != nil {
		return fmt.Errorf("peer-quic-recv: accept: %w", err)
	}
	errs := make(chan error, o.Files)
	for range o.Files {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return fmt.Errorf("peer-quic-recv: accept stream: %w", err)
		}
		go func() { errs <- receiveFile(st, o.Dir) }()
	}
	var first error
	for range o.Files {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		conn.CloseWithError(1, first.Error())
		return first
	}
	// Leaving now could lose the last answers still in the send buffer:
	// the sender closes the connection once it has read them all.
	select {
	case <-conn.Context().Done():
	case <-time.After(10 * time.Second):
	}
	return nil
}

// receiveFile takes one file from st into dir and answers with its SHA-256
// once it is on disk.
func receiveFile(st *quic.Stream, dir string) (err error) {
	defer func() {
		if err != nil {
			st.CancelRead(1)
			st.CancelWrite(1)
		}
	}()
	var n [2]byte
	if _, err := io.ReadFull(st, n[:]); err != nil {
		return fmt.Errorf("peer-quic-recv: header: %w", err)
	}
	name := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(st, name); err != nil {
		return fmt.Errorf("peer-quic-recv: name: %w", err)
	}
	// Only a plain name: the sender must not pick where the file goes.
	base := filepath.Base(string(name))
	if base != string(name) || base == "." || base == ".." {
		return fmt.Errorf("peer-quic-recv: bad file name %q", name)
	}
	f, err := os.Create(filepath.Join(dir, base))
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, peerBuf)
	for {
		n, rerr := st.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, err := f.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("peer-quic-recv: %s: %w", base, rerr)
		}
	}
	// The answer vouches for the file, so it must be on disk first.
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(st, "%x\n", h.Sum(nil)); err != nil {
		return err
	}
	return st.Close()
}

// PeerQUICSend sends o.Paths to the receiver, each on its own stream, and
// checks each answer against the SHA-256 of what it read.
func PeerQUICSend(ctx context.Context, o PeerQUICOptions) error {
	if o.Streams <= 0 {
		o.Streams = 32
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	tlsConf, err := transport.ClientTLS(o.Cert, o.Key, o.CA, o.ServerName)
	if err != nil {
		return err
	}
	tlsConf.NextProtos = []string{peerALPN}
	dctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	conn, err := quic.DialAddr(dctx, o.Addr, tlsConf, transport.QUICConfig())
	cancel()
	if err != nil {
		return fmt.Errorf("peer-quic-send: dial %s: %w", o.Addr, err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		slots = make(chan struct{}, o.Streams)
	)
	for _, p := range o.Paths {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := sendFile(ctx, conn, p); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		conn.CloseWithError(1, first.Error())
		return first
	}
	return conn.CloseWithError(0, "done")
}

// sendFile sends the file at path on a new stream of conn and waits for
// the receiver's hash.
func sendFile(ctx context.Context, conn *quic.Conn, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("peer-quic-send: open stream: %w", err)
	}
	name := filepath.Base(path)
	if len(name) > 0xffff {
		return fmt.Errorf("peer-quic-send: name too long: %s", name)
	}
	hdr := binary.BigEndian.AppendUint16(nil, uint16(len(name)))
	if _, err := st.Write(append(hdr, name...)); err != nil {
		return fmt.Errorf("peer-quic-send: %s: %w", name, err)
	}
	h := sha256.New()
	buf := make([]byte, peerBuf)
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, err := st.Write(buf[:n]); err != nil {
				return fmt.Errorf("peer-quic-send: %s: %w", name, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := st.Close(); err != nil {
		return err
	}
	answer, err := io.ReadAll(io.LimitReader(st, 128))
	if err != nil {
		return fmt.Errorf("peer-quic-send: %s: answer: %w", name, err)
	}
	want := hex.EncodeToString(h.Sum(nil))
	if got := string(bytes.TrimSpace(answer)); got != want {
		return errors.New("peer-quic-send: " + name + ": receiver hashed " + got + ", sent " + want)
	}
	return nil
}
