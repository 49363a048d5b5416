package config

import (
	"os"
	"path/filepath"
	"testing"
)

// listen.tcp left out follows listen.quic; set, it is kept, and empty
// turns the TCP listener off.
func TestListenTCPFollowsQUIC(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"[listen]\nquic = ':9443'\n", ":9443"},
		{"", ":7443"},
		{"[listen]\nquic = ':9443'\ntcp = '127.0.0.1:8443'\n", "127.0.0.1:8443"},
		{"[listen]\nquic = ':9443'\ntcp = ''\n", ""},
	} {
		p := filepath.Join(t.TempDir(), "collector.toml")
		if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p)
		if err != nil {
			t.Fatalf("%q: %v", c.body, err)
		}
		if cfg.Listen.TCP != c.want {
			t.Errorf("%q: listen.tcp %q, want %q", c.body, cfg.Listen.TCP, c.want)
		}
	}
}
