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

// collector.addrs lists several collectors; collector.addr alone is a
// list of one, as in existing configurations.
func TestCollectorAddrs(t *testing.T) {
	c, err := Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Collector.Addresses(); len(got) != 1 || got[0] != "127.0.0.1:7443" {
		t.Errorf("addr alone: Addresses() = %q, want [127.0.0.1:7443]", got)
	}
	list := strings.Replace(good, `addr = "127.0.0.1:7443"`, `addrs = ["a.example:4433", "b.example:4433"]`, 1)
	c, err = Load(write(t, list))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Collector.Addresses(); len(got) != 2 || got[0] != "a.example:4433" || got[1] != "b.example:4433" {
		t.Errorf("addrs: Addresses() = %q", got)
	}
	// The first collector's host, for a caller that talks to one; the
	// shipper names each collector's own.
	if n, err := c.TLSServerName(); n != "a.example" || err != nil {
		t.Errorf("TLSServerName with addrs = %q, %v; want a.example", n, err)
	}
	// The same one collector in both is no conflict.
	same := strings.Replace(good, `addr = "127.0.0.1:7443"`, "addr = \"127.0.0.1:7443\"\naddrs = [\"127.0.0.1:7443\"]", 1)
	if _, err := Load(write(t, same)); err != nil {
		t.Errorf("addr and addrs naming the same collector: %v", err)
	}
}

func TestCollectorAddrsErrors(t *testing.T) {
	for _, tt := range []struct {
		repl string
		want []string // all in the error
	}{
		{"addr = \"127.0.0.1:7443\"\naddrs = [\"a.example:4433\", \"b.example:4433\"]", []string{"collector.addr", "collector.addrs", "both"}},
		{`addrs = ["a.example:4433", "b.example"]`, []string{"collector.addrs[1]", `"b.example"`, "host:port"}},
		{`addrs = ["a.example:4433", ":4433"]`, []string{"collector.addrs[1]", "no host"}},
		{`addrs = ["a.example:4433", "b.example:70000"]`, []string{"collector.addrs[1]", "port"}},
		{`addrs = ["a.example:4433", "a.example:4433"]`, []string{"collector.addrs[1]", "collector.addrs[0]"}},
		{`addr = "no-port"`, []string{"collector.addr", `"no-port"`}},
		{`addrs = []`, []string{"collector.addr", "required"}},
	} {
		p := write(t, strings.Replace(good, `addr = "127.0.0.1:7443"`, tt.repl, 1))
		_, err := Load(p)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want one containing %q", tt.repl, err, w)
			}
		}
	}
}
