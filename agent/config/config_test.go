package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `
[device]
num_idk = "850591"
type_idk = 2
kod_to = "10101010"
naim_to = "ДАГЕСТАНСКАЯ"
naim_ztk = "МАПП ЯРАГ-КАЗМАЛЯР"
disl_idk = 1

[scanner]
output_dir = "out"
settle = "500ms"

[collector]
addr = "127.0.0.1:7443"
`

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadAppliesDefaultsAndResolvesPaths(t *testing.T) {
	p := write(t, good)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if c.Scanner.OutputDir != filepath.Join(dir, "out") || c.Spool.Path != filepath.Join(dir, "spool.db") {
		t.Errorf("paths not resolved against the file's folder: %+v %+v", c.Scanner, c.Spool)
	}
	if c.Scanner.Settle != 500*time.Millisecond || c.Scanner.Rescan != time.Minute {
		t.Errorf("durations: %+v", c.Scanner)
	}
	if d := c.DeviceProto(); d.NumIdk != "850591" || d.NaimZtk != "МАПП ЯРАГ-КАЗМАЛЯР" {
		t.Errorf("device: %v", d)
	}
}

func TestLoadErrorsNameFileAndField(t *testing.T) {
	cases := map[string]string{
		strings.Replace(good, `kod_to = "10101010"`, `kod_to = "1010"`, 1):  "device.kod_to",
		strings.Replace(good, `type_idk = 2`, `type_idk = 3`, 1):            "device.type_idk",
		strings.Replace(good, `[scanner]`, "[scanner]\nsettel = \"1s\"", 1): "scanner.settel",
		strings.Replace(good, `addr = "127.0.0.1:7443"`, ``, 1):             "collector.addr",
		strings.Replace(good, `settle = "500ms"`, `settle = "soon"`, 1):     "settle",
	}
	for body, field := range cases {
		p := write(t, body)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), field) {
			t.Errorf("want an error naming %s and %s, got %v", p, field, err)
		}
	}
}

func TestTLSServerName(t *testing.T) {
	for _, tt := range []struct {
		addr, serverName, want string
		ok                     bool
	}{
		{"collector.example:4433", "", "collector.example", true},
		{"10.0.0.5:4433", "collector.example", "collector.example", true},
		{"[::1]:4433", "", "::1", true},
		{"no-port", "", "", false},
	} {
		c := Default()
		c.Collector.Addr, c.Collector.ServerName = tt.addr, tt.serverName
		got, err := c.TLSServerName()
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("addr %q, server_name %q: %q, %v; want %q, ok %v", tt.addr, tt.serverName, got, err, tt.want, tt.ok)
		}
	}
}

// collector.transport is 'auto' unless set, and only the three values
// pass.
func TestCollectorTransport(t *testing.T) {
	c, err := Load(write(t, good))
	if err != nil || c.Collector.Transport != "auto" {
		t.Fatalf("default transport %q, %v; want auto", c.Collector.Transport, err)
	}
	for _, v := range []string{"quic", "tcp"} {
		c, err := Load(write(t, good+"transport = '"+v+"'\n"))
		if err != nil || c.Collector.Transport != v {
			t.Errorf("transport %s: got %q, %v", v, c.Collector.Transport, err)
		}
	}
	_, err = Load(write(t, good+"transport = 'udp'\n"))
	if err == nil || !strings.Contains(err.Error(), "collector.transport") {
		t.Errorf("transport 'udp': %v, want an error naming collector.transport", err)
	}
}
