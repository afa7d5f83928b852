package main

import (
	"testing"
	"time"
)

// Every second, every CPU second, message and handshake lands in exactly one
// phase, and each phase sums all the times it was entered.
func TestPhasesAccumulatePerPhase(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var p phases
	p.move(phaseIdle, at(0), usage{0.1, 0.1}, 0, 0)
	p.move(phaseSetup, at(1), usage{0.2, 0.1}, 0, 0)      // idle: 0.1 user, 1 s
	p.move(phaseSteady, at(3), usage{0.5, 0.6}, 40, 10)   // setup: 0.3 + 0.5, 2 s, 40 msgs, 10 opened
	p.move(phaseSteady, at(4), usage{9, 9}, 50, 10)       // no change of phase: ignored
	p.move(phaseSetup, at(13), usage{0.9, 1.2}, 140, 10)  // steady: 0.4 + 0.6, 10 s, 100 msgs
	p.move(phaseSteady, at(14), usage{1.5, 1.4}, 150, 30) // setup again: 0.6 + 0.2, 1 s, 10 msgs, 20 opened
	got := p.report(at(24), usage{1.7, 1.8}, 350, 30)     // steady, open: 0.2 + 0.4, 10 s, 200 msgs
	want := map[string]phaseTotals{
		"idle":   {UserS: 0.1, SysS: 0, WallS: 1, Sent: 0, Handshakes: 0},
		"setup":  {UserS: 0.9, SysS: 0.7, WallS: 3, Sent: 50, Handshakes: 30},
		"steady": {UserS: 0.6, SysS: 1.0, WallS: 20, Sent: 300, Handshakes: 0},
	}
	for name, w := range want {
		g := got[name]
		if !near(g.UserS, w.UserS) || !near(g.SysS, w.SysS) || !near(g.WallS, w.WallS) ||
			g.Sent != w.Sent || g.Handshakes != w.Handshakes {
			t.Errorf("%s: got %+v, want %+v", name, g, w)
		}
	}
}

func TestReportBeforeAnyPhaseIsZero(t *testing.T) {
	var p phases
	for name, totals := range p.report(time.Now(), usage{1, 1}, 5, 5) {
		if totals != (phaseTotals{}) {
			t.Errorf("%s: %+v before any phase began", name, totals)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
