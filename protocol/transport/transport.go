// Package transport holds the transport pieces both ends share: the QUIC
// tuning, how a stream is finished, and the mutual-TLS configurations the
// collector and the agents build from their PEM files. The agent imports
// it, so it must not depend on anything under collector/.
package transport

import (
	"time"

	"github.com/quic-go/quic-go"
)

// QUICConfig is the transport tuning shared by both ends: keep-alives well
// below common NAT UDP timeouts (30 s); receive windows that fill a fast
// link with one file stream and, from the first round trip, a 100 Mbit/s
// link of 100 ms (1.25 MB in flight; quic-go would start the connection
// at 512 KiB and grow it only as the peer proves it reads); and streams
// for the agent's window of files (agent/ship.MaxWindowFiles, 32) beside
// its hello and events streams, with room for streams still closing.
func QUICConfig() *quic.Config {
	return &quic.Config{
		KeepAlivePeriod:                10 * time.Second,
		MaxIdleTimeout:                 45 * time.Second,
		HandshakeIdleTimeout:           10 * time.Second,
		InitialStreamReceiveWindow:     2 << 20,
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: 4 << 20,
		MaxConnectionReceiveWindow:     32 << 20,
		MaxIncomingStreams:             64,
	}
}
