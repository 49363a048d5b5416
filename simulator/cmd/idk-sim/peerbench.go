package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"idk/simulator/harness"
)

// runPeerBench is `idk-sim peerbench`: the project's agent→collector
// pipeline against bare quic-go, scp, rsync and nginx on loopback.
func runPeerBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peerbench", flag.ExitOnError)
	var o harness.PeerBenchOptions
	fs.StringVar(&o.Bin, "bin", "bin", "folder with the built programs")
	fs.StringVar(&o.Dir, "dir", ".peerbench", "working folder")
	fs.IntVar(&o.Files, "files", 4, "files every case moves")
	fs.Int64Var(&o.FileSize, "size", 256<<20, "bytes per file")
	peers := fs.String("peers", strings.Join(harness.PeerNames, ","), "peers to run beside the project, comma-separated")
	fs.DurationVar(&o.Timeout, "timeout", 15*time.Minute, "give up on a case after")
	fs.IntVar(&o.Lanes, "lanes", 0, "the agent's collector.lanes in the project's cases; 0: the agent's default")
	fs.Parse(args)
	var err error
	if o.Peers, err = harness.ParsePeers(*peers); err != nil {
		return err
	}
	return harness.PeerBench(ctx, o, os.Stdout)
}

// runPeerQUICRecv is the hidden `idk-sim peer-quic-recv`, the receiving
// end of peerbench's bare quic-go peer.
func runPeerQUICRecv(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peer-quic-recv", flag.ExitOnError)
	var o harness.PeerQUICOptions
	fs.StringVar(&o.Addr, "listen", "127.0.0.1:0", "UDP address to listen on")
	fs.StringVar(&o.Dir, "dir", "", "folder the files are written to (required)")
	fs.IntVar(&o.Files, "files", 1, "files to take before ending")
	fs.StringVar(&o.ReadyFile, "ready", "", "file created, holding the address, once listening")
	fs.StringVar(&o.CA, "ca", "", "CA certificate the sender's must chain to")
	fs.StringVar(&o.Cert, "cert", "", "this end's certificate")
	fs.StringVar(&o.Key, "key", "", "this end's key")
	fs.Parse(args)
	if o.Dir == "" {
		return fmt.Errorf("peer-quic-recv: -dir is required")
	}
	return harness.PeerQUICRecv(ctx, o)
}

// runPeerQUICSend is the hidden `idk-sim peer-quic-send FILE...`, the
// sending end of peerbench's bare quic-go peer.
func runPeerQUICSend(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peer-quic-send", flag.ExitOnError)
	var o harness.PeerQUICOptions
	fs.StringVar(&o.Addr, "addr", "", "the receiver's UDP address (required)")
	fs.StringVar(&o.ServerName, "server-name", "localhost", "a name in the receiver's certificate")
	fs.StringVar(&o.CA, "ca", "", "CA certificate the receiver's must chain to")
	fs.StringVar(&o.Cert, "cert", "", "this end's certificate")
	fs.StringVar(&o.Key, "key", "", "this end's key")
	fs.IntVar(&o.Streams, "streams", 32, "files in flight at once (the agent's window is 32)")
	fs.Parse(args)
	if o.Addr == "" {
		return fmt.Errorf("peer-quic-send: -addr is required")
	}
	o.Paths = fs.Args()
	return harness.PeerQUICSend(ctx, o)
}

// runPeerHTTPSPut is the hidden `idk-sim peer-https-put FILE...`, the
// client of peerbench's nginx peer.
func runPeerHTTPSPut(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peer-https-put", flag.ExitOnError)
	url := fs.String("url", "", "base URL; each file goes to URL + its base name (required)")
	ca := fs.String("ca", "", "the server's certificate (self-signed), PEM")
	fs.Parse(args)
	if *url == "" || *ca == "" {
		return fmt.Errorf("peer-https-put: -url and -ca are required")
	}
	return harness.PeerHTTPSPut(ctx, *url, *ca, fs.Args())
}
