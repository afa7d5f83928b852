// PUBACKs read by the sending goroutine itself, without a reader goroutine a
// connection.
//
// With one goroutine blocked in Read on each of 5,000 connections, every
// PUBACK woke the Go scheduler and its netpoller and cost two read syscalls
// (the data, then EAGAIN before parking): about a fifth of the generator's
// CPU in a profile at 5,000 msg/s. A device sends once a second, so its last
// PUBACK is in the kernel's buffer by the time it sends again: the scheduler
// reads it then, with one non-blocking read, and a connection that ended is
// noticed there (at most a second late) instead of in its reader.
package main

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// errWouldBlock: nothing to read now. A timeout-like net.Error, so that
// crypto/tls treats it as temporary and keeps the connection usable.
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

var errWouldBlock net.Error = wouldBlock{}

// ackEvery: seconds between two reads of a publishing device's PUBACKs.
const ackEvery = 4

// pollConn: a TCP connection whose Read blocks until `polling` is set (the
// TLS handshake and CONNACK), then never blocks: it returns what the kernel
// holds, or errWouldBlock. Write is the connection's own (it may block).
type pollConn struct {
	*net.TCPConn
	raw     syscall.RawConn
	polling atomic.Bool
}

func newPollConn(c *net.TCPConn) (*pollConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &pollConn{TCPConn: c, raw: raw}, nil
}

func (c *pollConn) Read(p []byte) (int, error) {
	if !c.polling.Load() {
		return c.TCPConn.Read(p)
	}
	var n int
	var rerr error
	// Go keeps the socket non-blocking; returning true means "done, do not
	// wait for readability", so this is exactly one read(2).
	if err := c.raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true
	}); err != nil {
		return 0, err
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN):
		return 0, errWouldBlock
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// dialPolled: a TCP connection (TLS when cfg is not nil) that reads without
// blocking once `poll()` is called. It reads blocking until then.
func dialPolled(addr string, cfg *tls.Config, timeout time.Duration) (net.Conn, func(), error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, nil, err
	}
	pc, err := newPollConn(c.(*net.TCPConn))
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	poll := func() { pc.polling.Store(true) }
	if cfg == nil {
		return pc, poll, nil
	}
	tc := tls.Client(pc, cfg)
	tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, nil, err
	}
	tc.SetDeadline(time.Time{})
	return tc, poll, nil
}

// countAcks: the PUBACKs among the complete packets at the front of `in`,
// and the bytes those packets took (a partial packet stays for the next read).
func countAcks(in []byte) (acks int64, used int, err error) {
	for {
		rest := in[used:]
		if len(rest) < 2 {
			return acks, used, nil
		}
		n, mult, i := 0, 1, 1
		for ; ; i++ {
			if i == 5 {
				return acks, used, errors.New("malformed remaining length")
			}
			if i >= len(rest) {
				return acks, used, nil // length not complete yet
			}
			n += int(rest[i]&0x7f) * mult
			mult *= 128
			if rest[i]&0x80 == 0 {
				break
			}
		}
		size := i + 1 + n
		if len(rest) < size {
			return acks, used, nil
		}
		if rest[0]&0xF0 == typePuback {
			acks++
		}
		used += size
	}
}

// drain reads, without blocking, what the broker sent device d and counts
// its PUBACKs: with `all` until nothing is left, else until none of its
// messages is unacknowledged. The read that only says "nothing more" is a
// syscall, so it is skipped when the count says there is nothing more; and
// the scheduler drains a device every ackEvery seconds, collecting that
// many PUBACKs with one read (crypto/tls keeps what a read brought beyond
// one record). A connection that ended counts what it left unacknowledged
// as failed.
func (g *generator) drain(d *device, all bool) {
	if !d.ready.Load() {
		return
	}
	for all || d.acked.Load() < d.sent.Load() {
		if len(d.pending) == cap(d.pending) {
			d.pending = append(d.pending, make([]byte, 256)...)[:len(d.pending)]
		}
		n, err := d.conn.Read(d.pending[len(d.pending):cap(d.pending)])
		d.pending = d.pending[:len(d.pending)+n]
		if n > 0 {
			acks, used, perr := countAcks(d.pending)
			d.acked.Add(acks)
			d.pending = d.pending[:copy(d.pending, d.pending[used:])]
			if perr != nil {
				err = perr
			}
		}
		var ne net.Error
		if err == nil {
			continue
		}
		if errors.As(err, &ne) && ne.Timeout() {
			return // nothing more for now
		}
		d.conn.Close()
		if !d.dead.Swap(true) {
			d.ready.Store(false)
			g.failed.Add(d.sent.Load() - d.acked.Load())
		}
		return
	}
}
