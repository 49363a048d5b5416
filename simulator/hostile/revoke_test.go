package hostile

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"idk/protocol/idkpb"
	"idk/simulator/harness"
)

// Finding 2 (high): revocation locks out. A connection opened before
// "pki revoke" is closed within 10 s of it and stores nothing offered
// after that, and the revoked certificate cannot come back, not even by
// resuming the TLS session it had before.
func TestRevocationClosesLiveConnectionAndBlocksResumption(t *testing.T) {
	env, _ := startEnv(t, harness.Options{Agents: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// One session cache for every dial, as a client that keeps its TLS
	// session tickets to resume later.
	sessions := tls.NewLRUClientSessionCache(16)
	c, err := dial(ctx, env, idkB, sessions)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.hello(ctx, device(idkB, kodTO)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	snim := scanNumber(now, idkB, 1)
	c.mustUpload(t, snim, "doc_000.jpg", content("before", 1000), now)

	if err := pkiCmd("revoke", "--dir", certs(env), "--num-idk", idkB); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()

	// Keep offering files on the old connection until it is closed.
	type attempt struct {
		name string
		at   time.Time
	}
	var tries []attempt
	for i := 1; time.Since(revoked) < 12*time.Second && c.conn.Context().Err() == nil; i++ {
		name := fmt.Sprintf("doc_%03d.jpg", i)
		data := content(name, 1000)
		tries = append(tries, attempt{name, time.Now()})
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		c.upload(actx, offerOf(snim, name, data, now), data)
		acancel()
		time.Sleep(300 * time.Millisecond)
	}
	closedAfter := time.Since(revoked)
	select {
	case <-c.conn.Context().Done():
		t.Logf("the connection of the revoked ИДК was closed %v after the revocation", closedAfter.Round(time.Millisecond))
		var ae *quic.ApplicationError
		if cause := context.Cause(c.conn.Context()); !errors.As(cause, &ae) || ae.ErrorCode != 3 {
			t.Errorf("closed with %v; want QUIC application error 3 (revoked)", cause)
		}
	default:
		t.Errorf("the connection of the revoked ИДК is still open %v after the revocation; want closed within 10 s", closedAfter.Round(time.Millisecond))
	}

	// Nothing offered later than 10 s after the revocation is stored.
	stored := map[string]bool{}
	for _, f := range storedFiles(t, env) {
		if f.NumIDK == idkB {
			stored[f.Name] = true
		}
	}
	for _, a := range tries {
		if a.at.Sub(revoked) > 10*time.Second && stored[a.name] {
			t.Errorf("%s, offered %v after the revocation, was stored", a.name, a.at.Sub(revoked).Round(time.Millisecond))
		}
	}

	// A new connection is refused, with or without the old session.
	for _, cache := range []tls.ClientSessionCache{sessions, nil} {
		dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
		again, err := dial(dctx, env, idkB, cache)
		if err != nil {
			dcancel()
			continue // refused in the handshake
		}
		resumed := again.conn.ConnectionState().TLS.DidResume
		if err := again.hello(dctx, device(idkB, kodTO)); err == nil {
			t.Errorf("the revoked ИДК reconnected and its hello was accepted (session resumed: %v)", resumed)
			data := content("after", 1000)
			rep, res, _ := again.upload(dctx, offerOf(snim, "doc_999.jpg", data, now), data)
			if rep != nil && rep.Status == idkpb.FileOfferReply_STATUS_SEND && res != nil && res.Error == "" {
				t.Errorf("and stored a file after its revocation (session resumed: %v)", resumed)
			}
		}
		again.close()
		dcancel()
	}
}
