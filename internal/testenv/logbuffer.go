package testenv

import (
	"bytes"
	"sync"
)

// LogBuffer is a log sink a test shares with the goroutines it starts
// (handlers, handshakes, an agent's loops): Write and String may be called
// concurrently.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
