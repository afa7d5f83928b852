// loadgen: real-time 1 Hz wearables over MQTT for benchmarks.e2e, as cheap as
// a publisher can be, so the benchmark measures vitalstream and not itself.
//
// Each device has its own connection and identity (username = device id,
// password from the credentials file, TLS with the given CA), as enrolled
// devices do. Device i of n sends at +i/n s within each second one native-JSON
// message with five vitals stamped with the time it is due, the same bytes as
// benchmarks/e2e/wearables.py's Fleet.message. Every PUBLISH is QoS 1 and
// counted when its PUBACK arrives: confirmed + failed + unconfirmed = sent.
//
// Control on stdin, one command a line: "active N" (devices 0..N-1 publish),
// "stop" (stop publishing, wait for the PUBACKs, disconnect, report).
// Output on stdout, JSON lines: {"event":"sent",...} for traced devices,
// {"event":"stats",...} every second, {"event":"final",...} at the end. Stats
// and final carry the CPU split by phase (phases.go): setup while requested
// devices are still connecting, steady while every active device is connected.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type credential struct {
	Device   string `json:"device"`
	Password string `json:"password"`
}

type device struct {
	index    int
	id       string
	topic    string
	password string
	conn     net.Conn
	ready    atomic.Bool
	dead     atomic.Bool
	sent     atomic.Int64
	acked    atomic.Int64
	packetID uint16
	lastSend time.Time
	pending  []byte // bytes read from the broker, not yet a whole packet
}

type generator struct {
	host, topicRoot   string
	port              int
	tlsConfig         *tls.Config
	devices           []*device
	lowEvery          int
	traceEvery        int
	out               *bufio.Writer
	outMu             sync.Mutex
	active            atomic.Int64
	connectRequested  atomic.Int64
	connectQueue      chan *device
	sent              atomic.Int64
	phaseMu           sync.Mutex
	ph                phases
	dialsDone         int64 // under phaseMu, as is opened
	opened            int64
	failed            atomic.Int64
	connectErrors     atomic.Int64
	behindMaxMs       float64
	firstConnectError atomic.Value
}

func (g *generator) emit(v map[string]any) {
	b, _ := json.Marshal(v)
	g.outMu.Lock()
	g.out.Write(b)
	g.out.WriteByte('\n')
	g.outMu.Unlock()
}

func (g *generator) flush() {
	g.outMu.Lock()
	g.out.Flush()
	g.outMu.Unlock()
}

func (g *generator) isLow(i int) bool    { return g.lowEvery > 0 && i%g.lowEvery == 0 }
func (g *generator) isTraced(i int) bool { return g.traceEvery > 0 && i%g.traceEvery == 1 }

// payload: the bytes of Fleet.message(i, ts_ms) in benchmarks/e2e/wearables.py.
func (g *generator) payload(b []byte, i int, tsMs int64) []byte {
	wiggle := int64((int64(i)*7+tsMs/1000)%11) - 5
	spo2 := int64(97)
	if g.isLow(i) {
		spo2 = 85
	}
	half := wiggle / 2
	if wiggle < 0 && wiggle%2 != 0 {
		half-- // Python's floor division
	}
	ts := strconv.FormatInt(tsMs, 10)
	b = append(b, `{"v":1,"ts":`...)
	b = append(b, ts...)
	b = append(b, `,"readings":[`...)
	item := func(b []byte, metric string, value string, unit string, last bool) []byte {
		b = append(b, `{"metric":"`...)
		b = append(b, metric...)
		b = append(b, `","value":`...)
		b = append(b, value...)
		b = append(b, `,"unit":"`...)
		b = append(b, unit...)
		b = append(b, `","ts":`...)
		b = append(b, ts...)
		b = append(b, '}')
		if !last {
			b = append(b, ',')
		}
		return b
	}
	b = item(b, "heart_rate", strconv.FormatInt(72+wiggle, 10), "/min", false)
	b = item(b, "spo2", strconv.FormatInt(spo2, 10), "%", false)
	b = item(b, "respiratory_rate", strconv.FormatInt(16+half, 10), "/min", false)
	b = item(b, "rr_interval", strconv.FormatInt(830+4*wiggle, 10), "ms", false)
	b = item(b, "body_temperature", "36.8", "Cel", true)
	return append(b, "]}"...)
}

func (g *generator) dial(d *device) error {
	addr := net.JoinHostPort(g.host, strconv.Itoa(g.port))
	conn, poll, err := dialPolled(addr, g.tlsConfig, 10*time.Second)
	if err != nil {
		return err
	}
	if _, err := conn.Write(connectPacket(d.id, d.id, d.password, 60)); err != nil {
		conn.Close()
		return err
	}
	// Blocking until the CONNACK; unbuffered, so nothing after it is consumed here.
	r := bufio.NewReaderSize(conn, 16)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	kind, body, err := readPacket(r, nil)
	if err != nil {
		conn.Close()
		return fmt.Errorf("no CONNACK: %w", err)
	}
	if kind&0xF0 != typeConnack {
		conn.Close()
		return fmt.Errorf("expected CONNACK, got packet type %#x", kind)
	}
	if err := connackError(body); err != nil {
		conn.Close()
		return err
	}
	conn.SetReadDeadline(time.Time{})
	if r.Buffered() > 0 { // the broker sends nothing unasked before a PUBLISH
		conn.Close()
		return fmt.Errorf("unexpected %d bytes after CONNACK", r.Buffered())
	}
	poll() // from here the scheduler reads PUBACKs itself (acks.go)
	d.conn = conn
	d.pending = make([]byte, 0, 256)
	d.lastSend = time.Now()
	d.ready.Store(true)
	return nil
}

func (g *generator) connector() {
	for d := range g.connectQueue {
		err := g.dial(d)
		if err != nil {
			g.connectErrors.Add(1)
			g.firstConnectError.CompareAndSwap(nil, err.Error())
			d.dead.Store(true)
		}
		g.phaseMu.Lock()
		g.dialsDone++
		if err == nil {
			g.opened++
		}
		g.phaseMu.Unlock()
		g.updatePhase()
	}
}

// updatePhase: setup while a requested connection is not yet open or
// refused, steady while devices are active and all of them are, else idle.
func (g *generator) updatePhase() {
	g.phaseMu.Lock()
	defer g.phaseMu.Unlock()
	next := phaseIdle
	if g.dialsDone < g.connectRequested.Load() {
		next = phaseSetup
	} else if g.active.Load() > 0 {
		next = phaseSteady
	}
	if !g.ph.hasStarted || next != g.ph.current {
		g.ph.move(next, time.Now(), rusage(), g.sent.Load(), g.opened)
	}
}

// phaseReport: every phase's CPU, wall time, messages and handshakes so far.
func (g *generator) phaseReport() (string, map[string]phaseTotals) {
	g.phaseMu.Lock()
	defer g.phaseMu.Unlock()
	return phaseNames[g.ph.current], g.ph.report(time.Now(), rusage(), g.sent.Load(), g.opened)
}

func (g *generator) send(d *device, tsMs int64, buf []byte) []byte {
	d.packetID++
	if d.packetID == 0 {
		d.packetID = 1 // 0 is not a valid packet identifier
	}
	buf = appendPublish(buf[:0], d.topic, d.packetID, g.payload(make([]byte, 0, 400), d.index, tsMs))
	d.sent.Add(1)
	g.sent.Add(1)
	if _, err := d.conn.Write(buf); err != nil {
		d.conn.Close() // the reader sees it and counts the unacknowledged as failed
	}
	d.lastSend = time.Now()
	if g.isTraced(d.index) || g.isLow(d.index) {
		g.emit(map[string]any{"event": "sent", "device": d.index, "ts_ms": tsMs})
	}
	return buf
}

// schedule publishes every active, connected device once a second, spread over the second.
func (g *generator) schedule(stop <-chan struct{}) {
	buf := make([]byte, 0, 1024)
	ping := []byte{typePingreq, 0}
	sec := time.Now().Unix() + 1
	for {
		n := int(g.active.Load())
		for k := int(g.connectRequested.Load()); k < n; k++ {
			g.connectRequested.Store(int64(k + 1)) // before the dial can finish
			g.connectQueue <- g.devices[k]
		}
		g.updatePhase()
		base := sec * 1000
		for i := 0; i < n; {
			select {
			case <-stop:
				return
			default:
			}
			nowMs := time.Now().UnixMilli()
			for ; i < n; i++ {
				due := base + int64(i)*1000/int64(n)
				if due > nowMs {
					break
				}
				if behind := float64(nowMs - due); behind > g.behindMaxMs {
					g.behindMaxMs = behind
				}
				if d := g.devices[i]; d.ready.Load() {
					if (int64(i)+sec)%ackEvery == 0 {
						g.drain(d, false) // its PUBACKs of the last ackEvery seconds
					}
					if d.ready.Load() {
						buf = g.send(d, due, buf)
					}
				}
			}
			if i < n {
				// Sends are batched into 5 ms ticks: a wake-up per message was a good
				// share of the CPU; a reading stamped up to 5 ms before it leaves is not.
				time.Sleep(5 * time.Millisecond)
			}
		}
		// Idle connections (not active yet, or between seconds) keep their session alive.
		for _, d := range g.devices[:g.connectRequested.Load()] {
			if d.ready.Load() && time.Since(d.lastSend) > 20*time.Second {
				g.drain(d, true) // PUBACKs and PINGRESPs of a device no longer active
				d.conn.Write(ping)
				d.lastSend = time.Now()
			}
		}
		g.flush()
		sec++
		if now := time.Now().Unix(); sec < now {
			sec = now // behind by more than a second: skip ahead rather than burst
		}
		if wait := time.Until(time.Unix(sec, 0)); wait > 0 {
			select {
			case <-stop:
				return
			case <-time.After(wait):
			}
		}
	}
}

func (g *generator) totals() (sent, acked int64, connected int) {
	for _, d := range g.devices[:g.connectRequested.Load()] {
		sent += d.sent.Load()
		acked += d.acked.Load()
		if d.ready.Load() {
			connected++
		}
	}
	return
}

func cpuSeconds() float64 {
	u := rusage()
	return u.userS + u.sysS
}

func main() {
	host := flag.String("host", "127.0.0.1", "MQTT broker host")
	port := flag.Int("port", 8883, "MQTT broker port")
	caFile := flag.String("ca", "", "CA certificate (PEM) for TLS; empty: plain TCP")
	credsFile := flag.String("credentials", "", `JSON [{"device": ..., "password": ...}, ...]`)
	topicRoot := flag.String("topic-root", "devices", "topics are ROOT/<device>/vitals/json")
	lowEvery := flag.Int("low-every", 25, "every Nth device reads SpO2 85 %")
	traceEvery := flag.Int("trace-every", 50, "report send times of devices i % N == 1")
	connectors := flag.Int("connectors", 4, "connections opened in parallel")
	drainS := flag.Float64("drain-s", 30, "after stop, wait this long for outstanding PUBACKs")
	cpuProfile := flag.String("cpuprofile", "", "write a Go CPU profile to this file")
	sample := flag.String("print-payload", "", "I,TS_MS: print device I's payload at TS_MS and exit")
	flag.Parse()

	if *sample != "" {
		// For the cross-check against the Python fleet (tests/unit/benchmarks).
		var i int
		var ts int64
		if _, err := fmt.Sscanf(*sample, "%d,%d", &i, &ts); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: -print-payload I,TS_MS")
			os.Exit(2)
		}
		g := &generator{lowEvery: *lowEvery}
		os.Stdout.Write(g.payload(nil, i, ts))
		return
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	raw, err := os.ReadFile(*credsFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: credentials:", err)
		os.Exit(2)
	}
	var creds []credential
	if err := json.Unmarshal(raw, &creds); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: credentials:", err)
		os.Exit(2)
	}
	g := &generator{host: *host, port: *port, topicRoot: *topicRoot, lowEvery: *lowEvery,
		traceEvery: *traceEvery, out: bufio.NewWriterSize(os.Stdout, 1<<16),
		connectQueue: make(chan *device, len(creds))}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: ca:", err)
			os.Exit(2)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fmt.Fprintln(os.Stderr, "loadgen: ca: no certificate in", *caFile)
			os.Exit(2)
		}
		g.tlsConfig = &tls.Config{RootCAs: pool, ServerName: *host, MinVersion: tls.VersionTLS12}
	}
	for i, c := range creds {
		g.devices = append(g.devices, &device{index: i, id: c.Device, password: c.Password,
			topic: *topicRoot + "/" + c.Device + "/vitals/json"})
	}
	for i := 0; i < *connectors; i++ {
		go g.connector()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { g.schedule(stop); close(done) }()
	go func() {
		for range time.Tick(time.Second) {
			sent, acked, connected := g.totals()
			current, report := g.phaseReport()
			g.emit(map[string]any{"event": "stats", "sent": sent, "acked": acked,
				"failed": g.failed.Load(), "connected": connected,
				"connect_errors": g.connectErrors.Load(), "cpu_s": cpuSeconds(),
				"phase": current, "phases": report})
			g.flush()
		}
	}()

	cpuStart := cpuSeconds()
	g.updatePhase() // idle from here: the phases add up to the final cpu_s
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		if len(fields) == 2 && fields[0] == "active" {
			n, err := strconv.Atoi(fields[1])
			if err == nil && n >= 0 && n <= len(g.devices) {
				g.active.Store(int64(n))
				continue
			}
		}
		if len(fields) == 1 && fields[0] == "stop" {
			break
		}
		fmt.Fprintf(os.Stderr, "loadgen: unknown command %q\n", in.Text())
	}
	close(stop)
	<-done
	g.active.Store(0)
	g.updatePhase() // waiting for the last PUBACKs and disconnecting: idle
	deadline := time.Now().Add(time.Duration(*drainS * float64(time.Second)))
	for time.Now().Before(deadline) {
		for _, d := range g.devices[:g.connectRequested.Load()] {
			g.drain(d, false)
		}
		sent, acked, _ := g.totals()
		if acked+g.failed.Load() >= sent {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range g.devices[:g.connectRequested.Load()] {
		if d.ready.Load() {
			d.dead.Store(true) // a clean end, not a failure
			d.conn.Write([]byte{typeDisconnect, 0})
			d.conn.Close()
		}
	}
	sent, acked, _ := g.totals()
	failed := g.failed.Load()
	_, report := g.phaseReport()
	final := map[string]any{"event": "final", "sent": sent, "confirmed": acked, "failed": failed,
		"unconfirmed": sent - acked - failed, "connect_errors": g.connectErrors.Load(),
		"behind_ms_max": g.behindMaxMs, "cpu_s": cpuSeconds() - cpuStart, "phases": report}
	if e := g.firstConnectError.Load(); e != nil {
		final["first_connect_error"] = e
	}
	g.emit(final)
	g.flush()
}
