package main

import "testing"

// PUBACKs are counted from whole packets only; a packet cut by a read stays
// for the next one, and other packets (PINGRESP) are skipped.
func TestCountAcksWholePacketsOnly(t *testing.T) {
	puback := []byte{typePuback, 2, 0, 7}
	pingresp := []byte{typePingresp, 0}
	stream := append(append(append([]byte{}, puback...), pingresp...), puback...)
	for cut := 0; cut <= len(stream); cut++ {
		acks, used, err := countAcks(stream[:cut])
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		rest := append(append([]byte{}, stream[used:cut]...), stream[cut:]...)
		more, used2, err := countAcks(rest)
		if err != nil || used2 != len(rest) {
			t.Fatalf("cut %d: rest %v used %d err %v", cut, rest, used2, err)
		}
		if acks+more != 2 {
			t.Fatalf("cut %d: %d + %d PUBACKs, want 2", cut, acks, more)
		}
	}
}

func TestCountAcksRejectsMalformedLength(t *testing.T) {
	if _, _, err := countAcks([]byte{typePuback, 0xff, 0xff, 0xff, 0xff, 0x01}); err == nil {
		t.Fatal("a five-byte remaining length was accepted")
	}
}
