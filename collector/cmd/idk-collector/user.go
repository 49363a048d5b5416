package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"

	"idk/collector/auth"
	"idk/collector/config"
	"idk/internal/clock"
)

const userUsage = `usage: idk-collector user <command> [-config collector.toml] ...

The accounts of the console and the API (console.accounts). The running
collector sees a change within seconds, without a restart.

  add -login L -name "ИВАНОВ ИВАН ИВАНОВИЧ" -role ROLE [-posts KOD_TO,...] [-devices NUM_IDK,...]
        add an account; its password is read from standard input (asked
        twice, not echoed, on a terminal); a system account has none
  passwd -login L       set a new password, read as for add
  disable -login L      disable an account: its sessions and tokens stop at once
  enable -login L       enable it again
  list                  every account
  token -login L [-label TEXT]
        issue an API token; it is printed once and only its hash is kept

Roles: shift_lead and head_of_post need -posts (8-digit KOD_TO); a shift
lead may be narrowed to some ИДК with -devices; analyst, admin and system
see the whole region. Every change is written to the audit log
(console.audit) as done by "cli:" and your system user name.
`

// userCommand runs 'idk-collector user'. Exit status: 0 done, 1 failed,
// 2 a usage error.
func userCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return 2
	}
	verb := args[0]
	switch verb {
	case "add", "passwd", "disable", "enable", "list", "token":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, userUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "idk-collector user: unknown command %q\n\n%s", verb, userUsage)
		return 2
	}
	set := flag.NewFlagSet("idk-collector user "+verb, flag.ContinueOnError)
	set.SetOutput(stderr)
	set.Usage = func() { fmt.Fprint(stderr, userUsage); set.PrintDefaults() }
	cfgPath := set.String("config", "collector.toml", "configuration file")
	var login, name, role, posts, devices, label *string
	if verb != "list" {
		login = set.String("login", "", "the account's login (a-z, 0-9, '.', '_', '-')")
	}
	if verb == "add" {
		name = set.String("name", "", "Ф.И.О., as it goes into the reports and the audit log")
		role = set.String("role", "", "shift_lead, head_of_post, analyst, admin or system")
		posts = set.String("posts", "", "the KOD_TO of the customs posts, comma-separated (shift_lead, head_of_post)")
		devices = set.String("devices", "", "the NUM_IDK a shift lead is narrowed to, comma-separated")
	}
	if verb == "token" {
		label = set.String("label", "", "what the token is for, e.g. the system or script using it")
	}
	if err := set.Parse(args[1:]); err != nil {
		return 2
	}
	if set.NArg() > 0 {
		fmt.Fprintf(stderr, "idk-collector user %s: unexpected %q\n", verb, set.Arg(0))
		return 2
	}
	if login != nil && strings.TrimSpace(*login) == "" {
		fmt.Fprintf(stderr, "idk-collector user %s: -login is required\n", verb)
		return 2
	}
	if verb == "add" && (strings.TrimSpace(*name) == "" || *role == "") {
		fmt.Fprintln(stderr, "idk-collector user add: -name and -role are required")
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector user:", err)
		return 2
	}
	accounts, err := auth.OpenAccounts(cfg.Console.Accounts, clock.Real())
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector user:", err)
		return 1
	}
	if verb == "list" {
		return userList(accounts, stdout, stderr)
	}
	audit, err := auth.OpenAudit(cfg.Console.Audit, clock.Real())
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector user:", err)
		return 1
	}
	defer audit.Close()
	accounts.UseAudit(audit)
	by := cliUser()
	l := strings.TrimSpace(*login)

	switch verb {
	case "add":
		acc := auth.Account{Login: l, Name: strings.TrimSpace(*name), Role: auth.Role(*role), Posts: splitList(*posts), Devices: splitList(*devices)}
		// Check the fields before asking for a password typed for nothing.
		if err := acc.Validate(); err != nil {
			fmt.Fprintln(stderr, "idk-collector user add:", err)
			return 1
		}
		password := ""
		if acc.Role != auth.System {
			if password, err = askPassword(stdin, stderr, l); err != nil {
				fmt.Fprintln(stderr, "idk-collector user add:", err)
				return 1
			}
		}
		err = accounts.Add(acc, password, by)
	case "passwd":
		var password string
		if password, err = askPassword(stdin, stderr, l); err != nil {
			fmt.Fprintln(stderr, "idk-collector user passwd:", err)
			return 1
		}
		err = accounts.SetPassword(l, password, by)
	case "disable", "enable":
		err = accounts.SetDisabled(l, verb == "disable", by)
	case "token":
		var token string
		if token, err = accounts.NewToken(l, *label, by); err == nil {
			fmt.Fprintln(stdout, token)
			fmt.Fprintln(stderr, "the token is shown only this once; give it to its holder over a safe channel (Authorization: Bearer <token>)")
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "idk-collector user %s: %v\n", verb, err)
		return 1
	}
	if verb != "token" {
		fmt.Fprintf(stdout, "%s: %s done\n", l, verb)
	}
	return 0
}

// askPassword reads a password from stdin: from a terminal it prompts
// twice (on stderr) and wants the same both times; from a pipe it takes
// the first line.
func askPassword(stdin io.Reader, stderr io.Writer, login string) (string, error) {
	if !auth.IsTerminal(stdin) {
		return auth.ReadPassword(stdin)
	}
	fmt.Fprintf(stderr, "password for %s (at least %d characters): ", login, auth.MinPassword)
	first, err := auth.ReadPassword(stdin)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(stderr, "the same again: ")
	second, err := auth.ReadPassword(stdin)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	if first != second {
		return "", errors.New("password: the two differ")
	}
	return first, nil
}

func userList(accounts *auth.Accounts, stdout, stderr io.Writer) int {
	list, err := accounts.List()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector user list:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LOGIN\tNAME\tROLE\tPOSTS\tDEVICES\tDISABLED\tTOKENS")
	for _, a := range list {
		disabled := "-"
		if a.Disabled {
			disabled = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", a.Login, a.Name, a.Role, dash(strings.Join(a.Posts, ",")), dash(strings.Join(a.Devices, ",")), disabled, len(a.Tokens))
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintln(stderr, "idk-collector user list:", err)
		return 1
	}
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// splitList splits a comma-separated flag, dropping spaces and empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// cliUser is who a change from the command line is recorded as: "cli:"
// and the system user running it.
func cliUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return "cli:" + name
	}
	return "cli:unknown"
}
