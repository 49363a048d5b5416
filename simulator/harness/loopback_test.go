package harness

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"

	"idk/agent/ship"
	"idk/agent/spool"
	"idk/collector/pki"
	"idk/collector/server"
	"idk/collector/store"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
)

// BenchmarkLoopbackShip runs the shipper and the collector's server in
// this process on loopback, with a real spool, store and certificates, so
// that a CPU profile (-cpuprofile) shows the pipeline's own costs:
//
//	go test -run '^$' -bench LoopbackShip -benchtime 1x -cpuprofile cpu.out ./simulator/harness/
//
// Each iteration ships loopbackFiles files of loopbackSize bytes.
func BenchmarkLoopbackShip(b *testing.B) {
	const loopbackFiles, loopbackSize = 4, 128 << 20
	dir := b.TempDir()
	certs := filepath.Join(dir, "certs")
	if _, err := pki.CreateCA(certs, pki.Options{}); err != nil {
		b.Fatal(err)
	}
	if _, err := pki.IssueCollector(certs, []string{"localhost", "127.0.0.1"}, pki.Options{}); err != nil {
		b.Fatal(err)
	}
	if _, err := pki.IssueAgent(certs, "850591", pki.Options{}); err != nil {
		b.Fatal(err)
	}
	stls, err := transport.ServerTLS(filepath.Join(certs, "collector.crt"), filepath.Join(certs, "collector.key"), filepath.Join(certs, "ca.crt"))
	if err != nil {
		b.Fatal(err)
	}
	stls.NextProtos = []string{protocol.ALPN}
	ctls, err := transport.ClientTLS(filepath.Join(certs, "agent-850591.crt"), filepath.Join(certs, "agent-850591.key"), filepath.Join(certs, "ca.crt"), "localhost")
	if err != nil {
		b.Fatal(err)
	}
	ctls.NextProtos = []string{protocol.ALPN}

	// The files, written once.
	var files []spool.File
	data := make([]byte, loopbackSize)
	for i := range loopbackFiles {
		rand.Read(data)
		p := filepath.Join(dir, fmt.Sprintf("img%d.raw", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(data)
		files = append(files, spool.File{NumSnim: "S1", Name: filepath.Base(p), Path: p, Kind: idkpb.FileKind_FILE_KIND_RAW,
			Size: loopbackSize, SHA256: sum[:], FirstSeen: time.Now()})
	}
	log := slog.New(slog.DiscardHandler)
	b.SetBytes(loopbackFiles * loopbackSize)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		st, err := store.Open(filepath.Join(dir, fmt.Sprintf("data%d", i)), store.Options{Log: log})
		if err != nil {
			b.Fatal(err)
		}
		srv := server.New(server.Config{Store: st, Metrics: server.NewMetrics(prometheus.NewRegistry()), Log: log,
			Identify: func(cs tls.ConnectionState) (string, error) {
				if len(cs.PeerCertificates) == 0 {
					return "", errors.New("no certificate")
				}
				return pki.IdentityFromCert(cs.PeerCertificates[0])
			},
			Enrolled: func(string) (string, bool) { return "10216100", true },
		})
		ln, err := quic.ListenAddr("127.0.0.1:0", stls, transport.QUICConfig())
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan struct{})
		go func() { srv.Serve(ctx, ln); close(served) }()
		sp, err := spool.Open(filepath.Join(dir, fmt.Sprintf("spool%d.db", i)))
		if err != nil {
			b.Fatal(err)
		}
		if err := sp.Update(func(tx *spool.Tx) error {
			for _, f := range files {
				if err := tx.PutFile(f); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		sh := ship.New(ship.Config{Addr: ln.Addr().String(), TLS: ctls, QUIC: transport.QUICConfig(),
			Device: &idkpb.Device{NumIdk: "850591", KodTo: "10216100"}, Spool: sp,
			Metrics: ship.NewMetrics(prometheus.NewRegistry(), sp, nil), Log: log})
		b.StartTimer()
		shipped := make(chan struct{})
		go func() { sh.Run(ctx); close(shipped) }()
		for {
			st, err := sp.Stats()
			if err != nil {
				b.Fatal(err)
			}
			if st.Files == 0 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		b.StopTimer()
		cancel()
		<-shipped
		ln.Close()
		<-served
		sp.Close()
		st.Close()
		os.RemoveAll(filepath.Join(dir, fmt.Sprintf("data%d", i)))
		b.StartTimer()
	}
}
