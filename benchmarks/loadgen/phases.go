// The generator's own CPU, split by what it was doing: connecting devices
// (TLS handshakes, CONNECT, and the messages of devices already connected
// meanwhile), publishing with every requested device connected (the steady
// cost a message), or idle (no device active).
package main

import (
	"syscall"
	"time"
)

type phase int

const (
	phaseIdle phase = iota
	phaseSetup
	phaseSteady
	phaseCount
)

var phaseNames = [phaseCount]string{"idle", "setup", "steady"}

// usage: CPU seconds in user and kernel mode (getrusage of the whole process).
type usage struct{ userS, sysS float64 }

func rusage() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return usage{float64(ru.Utime.Nano()) / 1e9, float64(ru.Stime.Nano()) / 1e9}
}

// phaseTotals: what one phase cost, summed over every time it was entered.
type phaseTotals struct {
	UserS      float64 `json:"user_s"`
	SysS       float64 `json:"sys_s"`
	WallS      float64 `json:"wall_s"`
	Sent       int64   `json:"sent"`
	Handshakes int64   `json:"handshakes"` // connections opened (successful dials)
}

func (t phaseTotals) plus(u usage, wallS float64, sent, handshakes int64) phaseTotals {
	return phaseTotals{t.UserS + u.userS, t.SysS + u.sysS, t.WallS + wallS, t.Sent + sent,
		t.Handshakes + handshakes}
}

// phases accumulates the counters at every change of phase. Not safe for
// concurrent use: the generator holds its phase lock around it.
type phases struct {
	current    phase
	since      time.Time
	atUsage    usage
	atSent     int64
	atOpened   int64
	totals     [phaseCount]phaseTotals
	hasStarted bool
}

// move closes the current phase at (now, u, sent, opened) and opens `next`.
// Moving to the phase it is in changes nothing.
func (p *phases) move(next phase, now time.Time, u usage, sent, opened int64) {
	if p.hasStarted && next == p.current {
		return
	}
	if p.hasStarted {
		p.totals[p.current] = p.open(now, u, sent, opened)
	}
	p.current, p.since, p.atUsage, p.atSent, p.atOpened, p.hasStarted = next, now, u, sent, opened, true
}

// open: the current phase's totals including its still open part.
func (p *phases) open(now time.Time, u usage, sent, opened int64) phaseTotals {
	return p.totals[p.current].plus(usage{u.userS - p.atUsage.userS, u.sysS - p.atUsage.sysS},
		now.Sub(p.since).Seconds(), sent-p.atSent, opened-p.atOpened)
}

// report: every phase's totals up to now, keyed by name.
func (p *phases) report(now time.Time, u usage, sent, opened int64) map[string]phaseTotals {
	out := make(map[string]phaseTotals, phaseCount)
	for i := phase(0); i < phaseCount; i++ {
		out[phaseNames[i]] = p.totals[i]
	}
	if p.hasStarted {
		out[phaseNames[p.current]] = p.open(now, u, sent, opened)
	}
	return out
}
