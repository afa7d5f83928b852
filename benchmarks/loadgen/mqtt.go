// The few MQTT 3.1.1 packets a QoS 1 publisher needs (OASIS MQTT 3.1.1, §3).
//
// A device connection here only ever sends CONNECT, PUBLISH (QoS 1), PINGREQ
// and DISCONNECT and reads CONNACK, PUBACK and PINGRESP, so the packets are
// written by hand into one reused buffer: the generator must cost far less
// CPU than the system it loads (see README.md in this folder).
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	typeConnect    = 0x10
	typeConnack    = 0x20
	typePublishQoS = 0x32 // PUBLISH, QoS 1, no DUP, no RETAIN
	typePuback     = 0x40
	typePingreq    = 0xC0
	typePingresp   = 0xD0
	typeDisconnect = 0xE0
)

// appendRemainingLength encodes the variable-length "remaining length" (§2.2.3).
func appendRemainingLength(b []byte, n int) []byte {
	for {
		digit := byte(n % 128)
		n /= 128
		if n > 0 {
			digit |= 0x80
		}
		b = append(b, digit)
		if n == 0 {
			return b
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// connectPacket: clean session, keep-alive in seconds, optional username/password (§3.1).
func connectPacket(clientID, username, password string, keepAliveS uint16) []byte {
	var body []byte
	body = appendString(body, "MQTT")
	body = append(body, 4) // protocol level 3.1.1
	flags := byte(0x02)    // clean session: each run is new
	if username != "" {
		flags |= 0x80
	}
	if password != "" {
		flags |= 0x40
	}
	body = append(body, flags)
	body = binary.BigEndian.AppendUint16(body, keepAliveS)
	body = appendString(body, clientID)
	if username != "" {
		body = appendString(body, username)
	}
	if password != "" {
		body = appendString(body, password)
	}
	out := appendRemainingLength([]byte{typeConnect}, len(body))
	return append(out, body...)
}

// appendPublish appends a QoS 1 PUBLISH (§3.3) to b.
func appendPublish(b []byte, topic string, packetID uint16, payload []byte) []byte {
	b = append(b, typePublishQoS)
	b = appendRemainingLength(b, 2+len(topic)+2+len(payload))
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint16(b, packetID)
	return append(b, payload...)
}

// readPacket reads one packet's type byte and body.
func readPacket(r *bufio.Reader, body []byte) (byte, []byte, error) {
	kind, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return 0, nil, errors.New("malformed remaining length")
		}
		d, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mult
		mult *= 128
		if d&0x80 == 0 {
			break
		}
	}
	if cap(body) < n {
		body = make([]byte, n)
	}
	body = body[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return kind, body, nil
}

// connackError turns a CONNACK return code (§3.2.2.3) into an error.
func connackError(body []byte) error {
	if len(body) != 2 {
		return fmt.Errorf("malformed CONNACK")
	}
	switch body[1] {
	case 0:
		return nil
	case 4:
		return errors.New("connection refused: bad user name or password")
	case 5:
		return errors.New("connection refused: not authorized")
	default:
		return fmt.Errorf("connection refused: return code %d", body[1])
	}
}
