package appliance

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// dualListener serves TLS and, when plain is set or the peer is on loopback, plain HTTP on
// one port: the first byte of
// a connection tells them apart (a TLS handshake starts with 0x16, an HTTP request with a
// letter). On loopback the SDK, curl and the UI speak plain HTTP while kubectl, which sends
// a token over TLS only, speaks HTTPS to the same address. Connections are told apart in
// goroutines of their own, so a client that sends nothing holds up no other.
type dualListener struct {
	net.Listener
	tls   *tls.Config
	plain bool

	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	err   error
}

// sniffTimeout bounds how long a new connection may stay silent before it is closed.
const sniffTimeout = 10 * time.Second

func newDualListener(ln net.Listener, cfg *tls.Config, plain bool) *dualListener {
	l := &dualListener{Listener: ln, tls: cfg, plain: plain, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *dualListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.Close()
			return
		}
		go l.sniff(c)
	}
}

func (l *dualListener) sniff(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, first: b[0], pending: true}
	var out net.Conn
	switch {
	case b[0] == 0x16: // TLS handshake record
		out = tls.Server(pc, l.tls)
	case l.plain || loopbackPeer(c):
		out = pc
	default:
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nthis kfp-box serves HTTPS only on this address: use https://\n")
		c.Close()
		return
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

// loopbackPeer says whether c comes from this machine's loopback: plain HTTP from there
// crosses no network, so a listener beyond loopback takes it too (tasks, local clients).
func loopbackPeer(c net.Conn) bool {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

// Accept returns the next classified connection.
func (l *dualListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting.
func (l *dualListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// peekedConn gives back the byte read to classify the connection.
type peekedConn struct {
	net.Conn
	first   byte
	pending bool
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if p.pending && len(b) > 0 {
		p.pending = false
		b[0] = p.first
		if len(b) == 1 {
			return 1, nil
		}
		n, err := p.Conn.Read(b[1:])
		if n < 0 {
			n = 0
		}
		if err != nil && n > 0 {
			err = nil // report the peeked byte now, the error on the next read
		}
		return n + 1, err
	}
	return p.Conn.Read(b)
}
