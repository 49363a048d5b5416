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
// below common NAT UDP timeouts (30 s), and windows large enough to fill a
// fast link with one file stream.
func QUICConfig() *quic.Config {
	return &quic.Config{
		KeepAlivePeriod:            10 * time.Second,
		MaxIdleTimeout:             45 * time.Second,
		HandshakeIdleTimeout:       10 * time.Second,
		InitialStreamReceiveWindow: 1 << 20,
		MaxStreamReceiveWindow:     16 << 20,
		MaxConnectionReceiveWindow: 32 << 20,
		MaxIncomingStreams:         64,
	}
}

// EndStream finishes both directions of st. QUIC counts a stream against
// the peer's stream limit until its receive side is read to the end or
// cancelled as well, so every exchange, on either end, ends here whatever
// happened.
func EndStream(st *quic.Stream) {
	st.CancelRead(0)
	st.Close()
}
