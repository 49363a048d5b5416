package auth

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAccountsFile(t *testing.T) {
	f := newFixture(t)
	path := f.accounts.Path()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("accounts file mode %v, want 0600", fi.Mode().Perm())
	}
	var list []Account
	if err := json.Unmarshal([]byte(readFile(t, path)), &list); err != nil {
		t.Fatal(err)
	}
	var logins []string
	for _, a := range list {
		logins = append(logins, a.Login)
	}
	if strings.Join(logins, " ") != "analyst docs head.b lead.a" {
		t.Fatalf("logins in the file: %v, want sorted", logins)
	}
	if strings.Contains(readFile(t, path), leadPassword) || !strings.HasPrefix(list[3].PasswordHash, "$2") {
		t.Fatal("the password is kept, not its bcrypt hash")
	}
	if list[1].PasswordHash != "" {
		t.Fatal("a system account has a password")
	}
	// Written atomically: no temporary file stays beside it.
	entries, _ := os.ReadDir(f.dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
	if e := f.find(`^user_add$`); len(e) != 4 || e[3].Target != "docs" || e[3].By != "test" {
		t.Fatalf("audit user_add: %+v", e)
	}
}

func TestAccountsMissingFile(t *testing.T) {
	a, err := OpenAccounts(filepath.Join(t.TempDir(), "none.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := a.List(); err != nil || len(l) != 0 {
		t.Fatalf("missing file: %v %v, want no accounts", l, err)
	}
}

func TestAccountsBrokenFileKeepsLastGood(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(f.accounts.Path(), []byte(`[{"login":"x","disable":true}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(3e9)
	acc, ok, err := f.accounts.Get("lead.a")
	if err == nil || !strings.Contains(err.Error(), "disable") || !ok || acc.Name != "ПЕТРОВ П.П." {
		t.Fatalf("broken file: %v %v %v, want an error naming the field and the last good account", acc, ok, err)
	}
}

// Two writers at once (the collector and the command line) lose nothing.
func TestAccountsConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for w := range 2 {
		a, err := OpenAccounts(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := range 10 {
				errs <- a.Add(Account{Login: fmt.Sprintf("w%d-%d", w, i), Name: "ТЕСТ Т.Т.", Role: Analyst}, "длинный-пароль", "test")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	list, _, _, err := readAccounts(path)
	if err != nil || len(list) != 20 {
		t.Fatalf("%d accounts, %v: want all 20", len(list), err)
	}
}

func TestAccountValidation(t *testing.T) {
	f := newFixture(t)
	ok := Account{Login: "new.lead", Name: "НОВИКОВ Н.Н.", Role: ShiftLead, Posts: []string{postA}}
	for _, tc := range []struct {
		name string
		edit func(*Account)
		pw   string
		want string
	}{
		{"login", func(a *Account) { a.Login = "Иванов" }, "", "login"},
		{"short login", func(a *Account) { a.Login = "a" }, "", "login"},
		{"name", func(a *Account) { a.Name = " " }, "", "name"},
		{"role", func(a *Account) { a.Role = "boss" }, "", "role"},
		{"posts missing", func(a *Account) { a.Posts = nil }, "", "posts"},
		{"bad post", func(a *Account) { a.Posts = []string{"1021"} }, "", "posts"},
		{"posts of a regional role", func(a *Account) { a.Role = Analyst }, "", "posts"},
		{"devices of a head", func(a *Account) { a.Role, a.Devices = HeadOfPost, []string{idkA} }, "", "devices"},
		{"short password", func(*Account) {}, "короткий", "password"},
		{"password is login", func(a *Account) { a.Login = "new.lead.10" }, "NEW.LEAD.10", "password"},
		{"system with password", func(a *Account) { a.Role, a.Posts = System, nil }, "длинный-пароль", "password"},
		{"exists", func(a *Account) { a.Login = "lead.a" }, "длинный-пароль", "already exists"},
	} {
		a := ok
		tc.edit(&a)
		pw := tc.pw
		if pw == "" {
			pw = "длинный-пароль"
		}
		err := f.accounts.Add(a, pw, "test")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
	if err := f.accounts.Add(ok, "длинный-пароль", "test"); err != nil {
		t.Fatalf("a good account: %v", err)
	}
	if err := f.accounts.SetPassword("docs", "длинный-пароль", "test"); err == nil {
		t.Fatal("a password set for a system account")
	}
	if err := f.accounts.SetDisabled("nobody", true, "test"); err == nil {
		t.Fatal("an unknown account disabled")
	}
}

func TestSetPassword(t *testing.T) {
	f := newFixture(t)
	if err := f.accounts.SetPassword("lead.a", "новый-пароль-смены", "cli:admin"); err != nil {
		t.Fatal(err)
	}
	c := f.client()
	if r := f.signIn(c, "lead.a", leadPassword); r.code != 401 {
		t.Fatalf("old password: %d, want 401", r.code)
	}
	if r := f.signIn(c, "lead.a", "новый-пароль-смены"); r.code != 303 {
		t.Fatalf("new password: %d %q", r.code, r.body)
	}
	if e := f.find(`^user_passwd$`); len(e) != 1 || e[0].By != "cli:admin" || e[0].Target != "lead.a" {
		t.Fatalf("audit: %+v", e)
	}
}

func TestAuditRecent(t *testing.T) {
	dir := t.TempDir()
	a, err := OpenAudit(filepath.Join(dir, "audit.jsonl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := range 800 {
		if err := a.Write(Entry{By: "test", Action: fmt.Sprintf("a%d", i), Detail: strings.Repeat("д", 100)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := a.Recent(3)
	if err != nil || len(got) != 3 || got[0].Action != "a799" || got[2].Action != "a797" || got[0].Time.IsZero() {
		t.Fatalf("Recent(3): %+v %v", got, err)
	}
	all, err := a.Recent(5000)
	if err != nil || len(all) != 800 || all[799].Action != "a0" {
		t.Fatalf("Recent(5000): %d entries, %v", len(all), err)
	}
	fi, _ := os.Stat(a.Path())
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit mode %v, want 0600", fi.Mode().Perm())
	}
	long := strings.Repeat("x", 10000)
	a.Write(Entry{By: "anonymous", Action: "sign_in_failed", Detail: long})
	if got, _ := a.Recent(1); len(got[0].Detail) > maxField+len("…") {
		t.Fatalf("a detail of %d bytes kept whole", len(got[0].Detail))
	}
}
