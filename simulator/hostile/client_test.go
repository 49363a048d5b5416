package hostile

import (
	"context"
	"crypto/tls"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/protocol/idkpb"
	"idk/simulator/harness"
)

// The ИДК the harness enrols (harness.NewEnv numbers them from 850591) and
// the customs body it binds every one of them to in the agent registry.
const (
	idkA  = "850591"
	idkB  = "850592"
	idkC  = "850593"
	kodTO = "10216100"
)

// dial opens a QUIC connection to env's collector with ИДК num's
// certificate (see dialAddr).
func dial(ctx context.Context, env *harness.Env, num string, sessions tls.ClientSessionCache) (*client, error) {
	return dialAddr(ctx, env.QUICAddr, certs(env), num, sessions)
}

// connect dials as ИДК num and says hello with its true identity; the
// test fails if the collector refuses. The connection is closed when the
// test ends.
func connect(t *testing.T, env *harness.Env, num string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dial(ctx, env, num, nil)
	if err != nil {
		t.Fatalf("ИДК %s: dial: %v", num, err)
	}
	if err := c.hello(ctx, device(num, kodTO)); err != nil {
		c.close()
		t.Fatalf("ИДК %s with its own identity: %v", num, err)
	}
	t.Cleanup(c.close)
	return c
}

// mustUpload uploads data and fails the test unless it is stored; it
// returns where the collector says it stored it.
func (c *client) mustUpload(t *testing.T, numSnim, name string, data []byte, scanTime time.Time) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, res, err := c.upload(ctx, offerOf(numSnim, name, data, scanTime), data)
	switch {
	case err != nil:
		t.Fatalf("ИДК %s upload %s/%s: %v", c.num, numSnim, name, err)
	case rep.Status != idkpb.FileOfferReply_STATUS_SEND:
		t.Fatalf("ИДК %s upload %s/%s: offer answered %v %q, want SEND", c.num, numSnim, name, rep.Status, rep.Error)
	case res.Error != "":
		t.Fatalf("ИДК %s upload %s/%s: not stored: %s", c.num, numSnim, name, res.Error)
	}
	return res.StoredAs
}

// mustEvents sends a batch and fails the test unless all of it is stored.
func (c *client) mustEvents(t *testing.T, evs ...*idkpb.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ack, err := c.sendEvents(ctx, evs...)
	if err != nil {
		t.Fatalf("ИДК %s events: %v", c.num, err)
	}
	if ack.Error != "" {
		t.Fatalf("ИДК %s events refused: %s", c.num, ack.Error)
	}
}

// snapshot hashes every file in the collector's scan folders, below
// <root>/<KOD_TO>/, scan markers included: the stored evidence. The
// collector's own files at the top of the root (index.db, cases.db,
// .incoming, keys) are left out. Keys are '/'-separated paths under root.
func snapshot(root string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel != "." && !strings.Contains(rel, "/") && (strings.HasPrefix(rel, ".") || !d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = hexSum(b)
		return nil
	})
	return out, err
}

// storedFiles lists the collector's index, failing the test if it cannot.
func storedFiles(t *testing.T, env *harness.Env) []harness.StoredFile {
	t.Helper()
	files, err := env.Stored()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// apiPost sends an authenticated POST with a JSON body to the collector's
// API and returns the status and body.
func apiPost(env *harness.Env, path, body string) (int, string, error) {
	tok, err := os.ReadFile(filepath.Join(env.Dir, "api.token"))
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+env.HTTPAddr+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
