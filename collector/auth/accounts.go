package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"idk/internal/atomicfile"
	"idk/internal/clock"
	"idk/protocol"
)

// Account is one person's (or system's) account as the accounts file keeps it.
type Account struct {
	Login        string    `json:"login"`
	Name         string    `json:"name"`
	Role         Role      `json:"role"`
	Posts        []string  `json:"posts,omitempty"`
	Devices      []string  `json:"devices,omitempty"`
	PasswordHash string    `json:"password_hash,omitempty"` // bcrypt
	Tokens       []Token   `json:"tokens,omitempty"`
	Disabled     bool      `json:"disabled,omitempty"`
	Created      time.Time `json:"created"`
	Changed      time.Time `json:"changed"`
	ChangedBy    string    `json:"changed_by"`
}

// Token is a person's API token: only its SHA-256 is kept.
type Token struct {
	ID      string    `json:"id"`
	SHA256  string    `json:"sha256"`
	Label   string    `json:"label,omitempty"`
	Created time.Time `json:"created"`
}

// Person is who the account signs in as.
func (a Account) Person() Person {
	return Person{Login: a.Login, Name: a.Name, Role: a.Role, Posts: a.Posts, Devices: a.Devices}
}

// Limits of what an account may hold.
const (
	// MinPassword is the shortest password accepted, in characters.
	MinPassword = 10
	// maxPassword is bcrypt's limit: it ignores (newer versions refuse)
	// bytes past 72, so a longer password would be weaker than it looks.
	maxPassword = 72
	// TokenPrefix starts every person's API token, so that a token
	// found in a log or a script is recognised for what it is.
	TokenPrefix = "idk_"
)

var loginRE = regexp.MustCompile(`^[a-z0-9._-]{2,32}$`)

// bcryptCost is the work factor of new password hashes; tests lower it.
var bcryptCost = bcrypt.DefaultCost

// Validate checks an account's fields, each error naming its field.
func (a Account) Validate() error {
	var errs []error
	if !loginRE.MatchString(a.Login) {
		errs = append(errs, fmt.Errorf("login %q: want 2-32 of a-z, 0-9, '.', '_', '-'", a.Login))
	}
	if strings.TrimSpace(a.Name) == "" {
		errs = append(errs, errors.New("name: required (Ф.И.О.)"))
	} else if !utf8.ValidString(a.Name) || len(a.Name) > 200 || strings.ContainsAny(a.Name, "\r\n\t") {
		errs = append(errs, errors.New("name: want one line of at most 200 bytes of text"))
	}
	if !a.Role.Valid() {
		errs = append(errs, fmt.Errorf("role %q: want one of %s", a.Role, roleList()))
	}
	switch {
	case a.Role == ShiftLead || a.Role == HeadOfPost:
		if len(a.Posts) == 0 {
			errs = append(errs, fmt.Errorf("posts: required for %s: the KOD_TO of the customs posts they work for", a.Role))
		}
	case len(a.Posts) > 0:
		errs = append(errs, fmt.Errorf("posts: not for %s, who sees the whole region", a.Role))
	}
	for _, p := range a.Posts {
		if err := protocol.CheckKodTO(p); err != nil {
			errs = append(errs, fmt.Errorf("posts: %w", err))
		}
	}
	if len(a.Devices) > 0 && a.Role != ShiftLead {
		errs = append(errs, fmt.Errorf("devices: only a shift lead is narrowed to some ИДК, not %s", a.Role))
	}
	for _, d := range a.Devices {
		if err := protocol.CheckNumIDK(d); err != nil {
			errs = append(errs, fmt.Errorf("devices: %w", err))
		}
	}
	if a.Role == System && a.PasswordHash != "" {
		errs = append(errs, errors.New("password: a system account signs in by API token only"))
	}
	return errors.Join(errs...)
}

func roleList() string {
	s := make([]string, len(Roles))
	for i, r := range Roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// checkPassword enforces the password rules for login.
func checkPassword(login, password string) error {
	switch {
	case utf8.RuneCountInString(password) < MinPassword:
		return fmt.Errorf("password: want at least %d characters", MinPassword)
	case len(password) > maxPassword:
		return fmt.Errorf("password: want at most %d bytes", maxPassword)
	case strings.EqualFold(password, login):
		return errors.New("password: must not be the login")
	}
	return nil
}

// Accounts is the accounts file: read by the collector (and re-read when
// it changes), written by 'idk-collector user' and the console.
//
// The file is a JSON list of Account sorted by login, mode 0600, replaced
// atomically. Writers (this process and the command line at once) are
// serialised by an exclusive lock on a file beside it (<path>.lock), and
// each change reads the file afresh under that lock, so no writer's change
// is lost. Readers never lock: they see the old file or the new one.
//
// Changes are written to the audit log when one is attached (UseAudit).
type Accounts struct {
	path  string
	clock clock.Clock

	mu        sync.Mutex
	byLogin   map[string]Account
	byToken   map[string]string // token SHA-256 (hex) → login
	mod       time.Time
	size      int64
	checkedAt time.Time
	audit     *Audit
}

// reloadEvery bounds how often the file is looked at for a change, as
// the agents' registry does.
const reloadEvery = 2 * time.Second

// OpenAccounts opens the accounts file at path; a missing file has no accounts.
// clk (clock.Real if nil) paces the checks for a changed file.
func OpenAccounts(path string, clk clock.Clock) (*Accounts, error) {
	a := &Accounts{path: path, clock: clock.Or(clk)}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.reloadLocked(true); err != nil {
		return nil, err
	}
	a.checkedAt = a.clock.Now()
	return a, nil
}

// UseAudit makes every later change (user_add, user_passwd, user_disable,
// user_enable, token_issued) be written to log. Without it changes are not
// audited: the collector and 'idk-collector user' both attach the log.
func (a *Accounts) UseAudit(log *Audit) {
	a.mu.Lock()
	a.audit = log
	a.mu.Unlock()
}

// Path is the accounts file.
func (a *Accounts) Path() string { return a.path }

// readAccounts reads and checks the file at path. A missing file has no
// accounts; it returns the file's modification time and size too.
func readAccounts(path string) ([]Account, time.Time, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, 0, nil
	}
	if err != nil {
		return nil, time.Time{}, 0, fmt.Errorf("accounts: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, 0, fmt.Errorf("accounts: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, time.Time{}, 0, fmt.Errorf("accounts: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fi.ModTime(), fi.Size(), nil
	}
	var list []Account
	dec := json.NewDecoder(bytes.NewReader(data))
	// A misspelt field edited by hand ("disable") must not be dropped
	// silently: it would leave the account enabled.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return nil, time.Time{}, 0, fmt.Errorf("accounts %s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, acc := range list {
		if err := acc.Validate(); err != nil {
			return nil, time.Time{}, 0, fmt.Errorf("accounts %s: account %d (%s): %w", path, i+1, acc.Login, err)
		}
		if seen[acc.Login] {
			return nil, time.Time{}, 0, fmt.Errorf("accounts %s: login %s is listed twice", path, acc.Login)
		}
		seen[acc.Login] = true
	}
	return list, fi.ModTime(), fi.Size(), nil
}

// reloadLocked re-reads the file if it changed (or always, if force).
// On error the last good accounts stay.
func (a *Accounts) reloadLocked(force bool) error {
	fi, err := os.Stat(a.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		a.set(nil, time.Time{}, 0)
		return nil
	case err != nil:
		return fmt.Errorf("accounts: %w", err)
	case !force && fi.ModTime().Equal(a.mod) && fi.Size() == a.size && a.byLogin != nil:
		return nil
	}
	list, mod, size, err := readAccounts(a.path)
	if err != nil {
		return err
	}
	a.set(list, mod, size)
	return nil
}

func (a *Accounts) set(list []Account, mod time.Time, size int64) {
	a.byLogin = make(map[string]Account, len(list))
	a.byToken = map[string]string{}
	for _, acc := range list {
		a.byLogin[acc.Login] = acc
		for _, t := range acc.Tokens {
			a.byToken[t.SHA256] = acc.Login
		}
	}
	a.mod, a.size = mod, size
}

// freshLocked re-reads the file when it may have changed: at most every
// reloadEvery on the clock. err reports a changed file that could not be
// read; the last good accounts stay in force.
func (a *Accounts) freshLocked() error {
	now := a.clock.Now()
	if now.Sub(a.checkedAt) < reloadEvery {
		return nil
	}
	a.checkedAt = now
	return a.reloadLocked(false)
}

// List returns every account, sorted by login. err reports a changed file
// that could not be read; the list is then the last good one.
func (a *Accounts) List() ([]Account, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.freshLocked()
	out := make([]Account, 0, len(a.byLogin))
	for _, acc := range a.byLogin {
		out = append(out, acc)
	}
	slices.SortFunc(out, func(x, y Account) int { return strings.Compare(x.Login, y.Login) })
	return out, err
}

// Get returns one account. err reports a changed file that could not be
// read; the answer is then from the last good one.
func (a *Accounts) Get(login string) (Account, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.freshLocked()
	acc, ok := a.byLogin[login]
	return acc, ok, err
}

// ByToken returns the account whose API token is token.
func (a *Accounts) ByToken(token string) (Account, bool, error) {
	if !strings.HasPrefix(token, TokenPrefix) {
		return Account{}, false, nil
	}
	sum := tokenHash(token)
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.freshLocked()
	login, ok := a.byToken[sum]
	if !ok {
		return Account{}, false, err
	}
	acc, ok := a.byLogin[login]
	return acc, ok, err
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// change applies f to the accounts read afresh under the writers' lock and
// writes them back. f returns the audit entry describing the change.
func (a *Accounts) change(f func(list []Account, now time.Time) ([]Account, Entry, error)) error {
	if err := os.MkdirAll(filepath.Dir(a.path), 0o750); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	unlock, err := lockFile(a.path + ".lock")
	if err != nil {
		return fmt.Errorf("accounts: lock %s: %w", a.path, err)
	}
	defer unlock()
	// Read the file itself, not this process's copy: the other writer may
	// have changed it a moment ago.
	list, _, _, err := readAccounts(a.path)
	if err != nil {
		return err
	}
	now := a.clock.Now().UTC()
	list, entry, err := f(list, now)
	if err != nil {
		return err
	}
	slices.SortFunc(list, func(x, y Account) int { return strings.Compare(x.Login, y.Login) })
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("accounts: encode: %w", err)
	}
	data = append(data, '\n')
	if err := atomicfile.WriteFile(a.path, data, 0o600); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	a.mu.Lock()
	audit := a.audit
	rerr := a.reloadLocked(true)
	a.checkedAt = a.clock.Now()
	a.mu.Unlock()
	if rerr != nil {
		return rerr
	}
	if audit != nil {
		entry.Time = now
		if err := audit.Write(entry); err != nil {
			return fmt.Errorf("accounts: the change is made but not audited: %w", err)
		}
	}
	return nil
}

func find(list []Account, login string) int {
	return slices.IndexFunc(list, func(acc Account) bool { return acc.Login == login })
}

var errNoAccount = errors.New("no such account")

// Add creates an account with a password (empty for a System account,
// which signs in by token only). Created, Changed and ChangedBy are set
// here; Tokens and PasswordHash given in acc are ignored.
func (a *Accounts) Add(acc Account, password, by string) error {
	acc.PasswordHash, acc.Tokens, acc.Disabled = "", nil, false
	acc.Name = strings.TrimSpace(acc.Name)
	if err := acc.Validate(); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if acc.Role == System {
		if password != "" {
			return errors.New("accounts: password: a system account signs in by API token only; give none")
		}
	} else {
		if err := checkPassword(acc.Login, password); err != nil {
			return fmt.Errorf("accounts: %w", err)
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
		if err != nil {
			return fmt.Errorf("accounts: password: %w", err)
		}
		acc.PasswordHash = string(hash)
	}
	return a.change(func(list []Account, now time.Time) ([]Account, Entry, error) {
		if find(list, acc.Login) >= 0 {
			return nil, Entry{}, fmt.Errorf("accounts: login %s: already exists", acc.Login)
		}
		acc.Created, acc.Changed, acc.ChangedBy = now, now, by
		detail := string(acc.Role)
		if len(acc.Posts) > 0 {
			detail += " posts " + strings.Join(acc.Posts, ",")
		}
		if len(acc.Devices) > 0 {
			detail += " devices " + strings.Join(acc.Devices, ",")
		}
		return append(list, acc), Entry{By: by, Action: "user_add", Target: acc.Login, Detail: detail}, nil
	})
}

// SetPassword changes a password.
func (a *Accounts) SetPassword(login, password, by string) error {
	if err := checkPassword(login, password); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return fmt.Errorf("accounts: password: %w", err)
	}
	return a.change(func(list []Account, now time.Time) ([]Account, Entry, error) {
		i := find(list, login)
		if i < 0 {
			return nil, Entry{}, fmt.Errorf("accounts: login %s: %w", login, errNoAccount)
		}
		if list[i].Role == System {
			return nil, Entry{}, fmt.Errorf("accounts: password: %s is a system account, which signs in by API token only", login)
		}
		list[i].PasswordHash = string(hash)
		list[i].Changed, list[i].ChangedBy = now, by
		return list, Entry{By: by, Action: "user_passwd", Target: login}, nil
	})
}

// SetDisabled disables or enables an account; a disabled account's
// sessions and tokens stop working at their next request.
func (a *Accounts) SetDisabled(login string, disabled bool, by string) error {
	return a.change(func(list []Account, now time.Time) ([]Account, Entry, error) {
		i := find(list, login)
		if i < 0 {
			return nil, Entry{}, fmt.Errorf("accounts: login %s: %w", login, errNoAccount)
		}
		list[i].Disabled = disabled
		list[i].Changed, list[i].ChangedBy = now, by
		action := "user_enable"
		if disabled {
			action = "user_disable"
		}
		return list, Entry{By: by, Action: action, Target: login}, nil
	})
}

// NewToken issues an API token for login and returns it (shown once):
// TokenPrefix and 32 random bytes in unpadded base64url. Only its SHA-256
// is kept.
func (a *Accounts) NewToken(login, label, by string) (string, error) {
	if !utf8.ValidString(label) || len(label) > 200 || strings.ContainsAny(label, "\r\n") {
		return "", errors.New("accounts: label: want one line of at most 200 bytes of text")
	}
	secret := make([]byte, 32)
	id := make([]byte, 8)
	rand.Read(secret) // crypto/rand.Read never fails (Go 1.24+)
	rand.Read(id)
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	tok := Token{ID: hex.EncodeToString(id), SHA256: tokenHash(token), Label: label}
	err := a.change(func(list []Account, now time.Time) ([]Account, Entry, error) {
		i := find(list, login)
		if i < 0 {
			return nil, Entry{}, fmt.Errorf("accounts: login %s: %w", login, errNoAccount)
		}
		tok.Created = now
		list[i].Tokens = append(list[i].Tokens, tok)
		list[i].Changed, list[i].ChangedBy = now, by
		detail := "id " + tok.ID
		if label != "" {
			detail += ", label " + label
		}
		return list, Entry{By: by, Action: "token_issued", Target: login, Detail: detail}, nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}
