package auth

// CONTRACT STUB: the helper implementing package auth replaces the bodies.

import (
	"time"

	"idk/internal/clock"
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

// Accounts is the accounts file: read by the collector (and re-read when
// it changes), written by 'idk-collector user' and the console.
type Accounts struct{}

// OpenAccounts opens the accounts file at path; a missing file has no accounts.
func OpenAccounts(path string, clk clock.Clock) (*Accounts, error) { panic("unimplemented") }

// Add creates an account with a password (empty for a System account,
// which signs in by token only).
func (a *Accounts) Add(acc Account, password, by string) error { panic("unimplemented") }

// SetPassword changes a password.
func (a *Accounts) SetPassword(login, password, by string) error { panic("unimplemented") }

// SetDisabled disables or enables an account; a disabled account's
// sessions and tokens stop working at their next request.
func (a *Accounts) SetDisabled(login string, disabled bool, by string) error { panic("unimplemented") }

// NewToken issues an API token for login and returns it (shown once).
func (a *Accounts) NewToken(login, label, by string) (string, error) { panic("unimplemented") }

// List returns every account, sorted by login.
func (a *Accounts) List() ([]Account, error) { panic("unimplemented") }

// Get returns one account.
func (a *Accounts) Get(login string) (Account, bool, error) { panic("unimplemented") }
