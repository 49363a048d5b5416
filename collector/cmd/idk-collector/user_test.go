package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"idk/collector/auth"
)

// userConfig writes a collector.toml whose accounts and audit log are in
// a temporary folder.
func userConfig(t *testing.T) (cfgPath, dir string) {
	t.Helper()
	dir = t.TempDir()
	cfgPath = filepath.Join(dir, "collector.toml")
	cfg := `[listen]
quic = "127.0.0.1:0"
[api]
corrections_token_file = "corrections.token"
[report]
dir = "reports"
[store]
root = "data"
timezone = "Europe/Moscow"
[console]
accounts = "etc/accounts.json"
audit = "log/audit.jsonl"
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dir
}

func runUser(stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := userCommand(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUserCommand(t *testing.T) {
	cfg, dir := userConfig(t)
	accountsPath := filepath.Join(dir, "etc", "accounts.json")

	code, _, stderr := runUser("пароль-смены-1\n", "add", "-config", cfg, "-login", "lead.a", "-name", "ПЕТРОВ П.П.", "-role", "shift_lead", "-posts", "10216100, 10216200", "-devices", "850591")
	if code != 0 {
		t.Fatalf("add: %d %s", code, stderr)
	}
	if code, _, stderr := runUser("", "add", "-config", cfg, "-login", "docs", "-name", "КПС «Документы»", "-role", "system"); code != 0 {
		t.Fatalf("add system: %d %s", code, stderr)
	}
	// Refusals name the field.
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"пароль-смены-1\n", []string{"add", "-login", "head", "-name", "СИДОРОВ С.С.", "-role", "head_of_post"}, 1, "posts"},
		{"пароль-смены-1\n", []string{"add", "-login", "an", "-name", "ИВАНОВА И.И.", "-role", "analyst", "-posts", "10216100"}, 1, "posts"},
		{"короткий\n", []string{"add", "-login", "lead.b", "-name", "СИДОРОВ С.С.", "-role", "shift_lead", "-posts", "10216100"}, 1, "password"},
		{"", []string{"add", "-login", "lead.b", "-name", "СИДОРОВ С.С.", "-role", "shift_lead", "-posts", "10216100"}, 1, "password"},
		{"пароль-смены-1\n", []string{"add", "-login", "lead.a", "-name", "ПЕТРОВ П.П.", "-role", "shift_lead", "-posts", "10216100"}, 1, "already exists"},
		{"пароль-смены-1\n", []string{"add", "-login", "Bad Login", "-name", "X", "-role", "admin"}, 1, "login"},
		{"", []string{"add", "-login", "x1", "-role", "admin"}, 2, "-name"},
		{"", []string{"disable"}, 2, "-login"},
		{"", []string{"disable", "-login", "nobody"}, 1, "no such account"},
		{"", []string{"frobnicate"}, 2, "unknown command"},
		{"", []string{"list", "-bogus"}, 2, "bogus"},
	} {
		args := append([]string{tc.args[0], "-config", cfg}, tc.args[1:]...)
		code, _, stderr := runUser(tc.stdin, args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: %d %q, want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}

	code, token, stderr := runUser("", "token", "-config", cfg, "-login", "docs", "-label", "КПС")
	token = strings.TrimSpace(token)
	if code != 0 || !strings.HasPrefix(token, auth.TokenPrefix) {
		t.Fatalf("token: %d %q %s", code, token, stderr)
	}
	if code, _, stderr := runUser("другой-пароль-2\n", "passwd", "-config", cfg, "-login", "lead.a"); code != 0 {
		t.Fatalf("passwd: %d %s", code, stderr)
	}
	if code, _, stderr := runUser("", "disable", "-config", cfg, "-login", "lead.a"); code != 0 {
		t.Fatalf("disable: %d %s", code, stderr)
	}

	// What the collector would read.
	acc, err := auth.OpenAccounts(accountsPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, ok, _ := acc.Get("lead.a")
	if !ok || !a.Disabled || strings.Join(a.Posts, " ") != "10216100 10216200" || strings.Join(a.Devices, " ") != "850591" || !strings.HasPrefix(a.ChangedBy, "cli:") {
		t.Fatalf("lead.a: %+v", a)
	}
	d, ok, _ := acc.ByToken(token)
	if !ok || d.Login != "docs" || d.Tokens[0].Label != "КПС" {
		t.Fatalf("token's account: %+v %t", d, ok)
	}
	if fi, err := os.Stat(accountsPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("accounts file: %v %v, want mode 0600", fi, err)
	}

	code, list, _ := runUser("", "list", "-config", cfg)
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "LOGIN") ||
		!strings.Contains(lines[1], "docs") || !strings.HasSuffix(lines[1], " 1") ||
		!strings.Contains(lines[2], "lead.a") || !strings.Contains(lines[2], "10216100,10216200") || !strings.Contains(lines[2], "yes") {
		t.Fatalf("list: %d\n%s", code, list)
	}

	// The audit log names the command line's user.
	data, err := os.ReadFile(filepath.Join(dir, "log", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for line := range strings.Lines(string(data)) {
		var e auth.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.By, "cli:") {
			t.Errorf("entry %+v: by %q, want cli:<user>", e, e.By)
		}
		actions = append(actions, e.Action+" "+e.Target)
	}
	if got := strings.Join(actions, ", "); got != "user_add lead.a, user_add docs, token_issued docs, user_passwd lead.a, user_disable lead.a" {
		t.Fatalf("audit: %s", got)
	}
}
