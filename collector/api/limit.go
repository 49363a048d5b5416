package api

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// LimitConns caps the connections hs holds on ln at max, so that clients
// without a token cannot take the file descriptors the agents' port needs.
// When the cap is reached a new connection does not wait behind idle ones:
// the connection that has been idle (or silent since it opened) the
// longest is closed to make room, and only when every held connection is
// busy with a request is the new one closed instead. It sets hs.ConnState;
// serve hs on the returned listener.
func LimitConns(hs *http.Server, ln net.Listener, max int) net.Listener {
	l := &limitListener{Listener: ln, max: max, conns: map[net.Conn]connState{}}
	hs.ConnState = l.track
	return l
}

type connState struct {
	state http.ConnState
	// since is on the wall clock, as the http.Server's own timeouts that
	// end idle connections are; it only orders the connections.
	since time.Time
}

type limitListener struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[net.Conn]connState
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if len(l.conns) >= l.max {
			victim := l.longestIdleLocked()
			if victim == nil {
				l.mu.Unlock()
				c.Close() // every slot serves a request: try again later
				continue
			}
			delete(l.conns, victim)
			victim.Close()
		}
		l.conns[c] = connState{state: http.StateNew, since: time.Now()}
		l.mu.Unlock()
		return c, nil
	}
}

// longestIdleLocked is the held connection that has done nothing for the
// longest, or nil if all are busy.
func (l *limitListener) longestIdleLocked() net.Conn {
	var victim net.Conn
	var since time.Time
	for c, st := range l.conns {
		if st.state != http.StateIdle && st.state != http.StateNew {
			continue
		}
		if victim == nil || st.since.Before(since) {
			victim, since = c, st.since
		}
	}
	return victim
}

func (l *limitListener) track(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	default:
		if _, held := l.conns[c]; held {
			l.conns[c] = connState{state: state, since: time.Now()}
		}
	}
}
