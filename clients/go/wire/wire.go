// Package wire is an AudioSocket codec (docs/PROTOCOL.md): frames, kinds,
// dialect rules, DTMF digits and control names. For tools and tests that
// speak AudioSocket directly, e.g. a scripted Asterisk in front of the
// bridge; backends talking to the bridge over gRPC never need it.
//
// Every message is a 1-byte kind, a 2-byte big-endian length and the
// payload; numbers inside payloads are little-endian.
package wire

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Dialect is the AudioSocket flavour of a connection.
type Dialect int

const (
	Asterisk Dialect = iota // stock Asterisk: 0x03 is a DTMF digit
	Extended                // 0x02 DTMF start/stop, 0x03 control
)

func (d Dialect) String() string {
	if d == Extended {
		return "extended"
	}
	return "asterisk"
}

// Peer is who receives the bytes being encoded.
type Peer int

const (
	ToAsterisk Peer = iota // we are the server
	ToServer               // we play Asterisk's part
)

// Kinds.
const (
	KindHangup              = 0x00
	KindUUID                = 0x01
	KindDTMF                = 0x02 // extended only
	KindDigitOrControl      = 0x03
	KindError               = 0xff
	HeaderSize              = 3
	MaxPayload              = 65535
	DTMFDigits              = "0123456789*#ABCD"
	kindAudioFirst     byte = 0x10
	kindAudioLast      byte = 0x18
)

var audioRates = []int{8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000}

// AudioKind is the kind for audio at rate, and false when there is none.
func AudioKind(rate int) (byte, bool) {
	for i, r := range audioRates {
		if r == rate {
			return kindAudioFirst + byte(i), true
		}
	}
	return 0, false
}

// AudioRate is the rate of an audio kind, 0 for other kinds.
func AudioRate(kind byte) int {
	if kind >= kindAudioFirst && kind <= kindAudioLast {
		return audioRates[kind-kindAudioFirst]
	}
	return 0
}

var controlNames = []string{
	"", "hangup", "ring", "ringing", "answer", "busy", "take_off_hook", "off_hook",
	"congestion", "flash", "wink", "option", "radio_key", "radio_unkey", "progress",
	"proceeding", "hold", "unhold", "video_update", "t38", "source_update", "transfer",
	"connected_line", "redirecting", "t38_parameters", "call_completion", "source_change",
	"read_action", "advice_of_charge", "end_of_queue", "incomplete", "malicious_call_id",
	"update_rtp_peer", "private_cause_code", "masquerade_notify",
	"stream_topology_request_change", "stream_topology_changed",
	"stream_topology_source_changed",
}

// ControlName is the snake_case name of an AST_CONTROL_* value, or "unknown(N)".
func ControlName(code byte) string {
	if code > 0 && int(code) < len(controlNames) {
		return controlNames[code]
	}
	return fmt.Sprintf("unknown(%d)", code)
}

// ErrorFlagNames names the bits of an error's flags byte (others as 0xNN).
func ErrorFlagNames(flags byte) []string {
	var out []string
	names := map[byte]string{1: "caller_hangup", 2: "frame_forwarding", 4: "memory"}
	for bit := 0; bit < 8; bit++ {
		v := byte(1) << bit
		if flags&v != 0 {
			if n, ok := names[v]; ok {
				out = append(out, n)
			} else {
				out = append(out, fmt.Sprintf("0x%02x", v))
			}
		}
	}
	return out
}

// IsDTMFDigit reports whether d is one of 0-9 * # A-D.
func IsDTMFDigit(d byte) bool { return d != 0 && strings.IndexByte(DTMFDigits, d) >= 0 }

// IsKnownKind reports whether the dialect defines kind.
func IsKnownKind(kind byte, d Dialect) bool {
	switch {
	case kind == KindHangup, kind == KindUUID, kind == KindDigitOrControl, kind == KindError:
		return true
	case kind >= kindAudioFirst && kind <= kindAudioLast:
		return true
	case kind == KindDTMF:
		return d == Extended
	}
	return false
}

// KindName is the kind's name in the dialect ("audio", "dtmf_digit", "control", "unknown(0xNN)", ...).
func KindName(kind byte, d Dialect) string {
	if !IsKnownKind(kind, d) {
		return fmt.Sprintf("unknown(0x%02x)", kind)
	}
	switch kind {
	case KindHangup:
		return "hangup"
	case KindUUID:
		return "uuid"
	case KindDTMF:
		return "dtmf"
	case KindDigitOrControl:
		if d == Extended {
			return "control"
		}
		return "dtmf_digit"
	case KindError:
		return "error"
	}
	return "audio"
}

// Message is one AudioSocket message: Hangup, UUID, DTMF, DTMFDigit,
// Control, Audio, Error or Unknown.
type Message interface {
	Kind() byte
	Payload() []byte
}

type (
	// Hangup (0x00).
	Hangup struct{}
	// UUID (0x01): the call's id, 16 bytes.
	UUID [16]byte
	// DTMF (extended 0x02): start (duration 0) or stop of a digit.
	DTMF struct {
		Start      bool
		Digit      byte
		DurationMs uint32
	}
	// DTMFDigit (asterisk 0x03): one digit, sent when it ends.
	DTMFDigit struct{ Digit byte }
	// Control (extended 0x03): an AST_CONTROL_* value.
	Control struct{ Code byte }
	// Audio (0x10-0x18): 16-bit LE PCM (or G.711 bytes) at Rate.
	Audio struct {
		Rate int
		PCM  []byte
	}
	// Error (0xff): the first payload byte is a set of flags.
	Error struct{ Data []byte }
	// Unknown: a kind the dialect does not define.
	Unknown struct {
		Type byte
		Data []byte
	}
)

func (Hangup) Kind() byte      { return KindHangup }
func (Hangup) Payload() []byte { return nil }
func (UUID) Kind() byte        { return KindUUID }
func (u UUID) Payload() []byte { return u[:] }
func (DTMF) Kind() byte        { return KindDTMF }
func (m DTMF) Payload() []byte {
	p := make([]byte, 6)
	if m.Start {
		p[0] = 1
	}
	p[1] = m.Digit
	binary.LittleEndian.PutUint32(p[2:], m.DurationMs)
	return p
}
func (DTMFDigit) Kind() byte        { return KindDigitOrControl }
func (m DTMFDigit) Payload() []byte { return []byte{m.Digit} }
func (Control) Kind() byte          { return KindDigitOrControl }
func (m Control) Payload() []byte   { return []byte{m.Code} }
func (m Audio) Kind() byte          { k, _ := AudioKind(m.Rate); return k }
func (m Audio) Payload() []byte     { return m.PCM }
func (Error) Kind() byte            { return KindError }
func (m Error) Payload() []byte     { return m.Data }
func (m Unknown) Kind() byte        { return m.Type }
func (m Unknown) Payload() []byte   { return m.Data }

// Flags is the error's flags byte (0 when the payload is empty).
func (m Error) Flags() byte {
	if len(m.Data) == 0 {
		return 0
	}
	return m.Data[0]
}

// String is the canonical 8-4-4-4-12 lower-case form.
func (u UUID) String() string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ParseUUID parses the canonical form.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 || len(s) != 36 {
		return u, fmt.Errorf("wire: %q is not a UUID", s)
	}
	copy(u[:], b)
	return u, nil
}

// ---------------------------------------------------------------- decoding

// DecodeError is malformed input. Code is one of too_large, unknown_kind,
// bad_length, empty_audio, odd_audio, bad_dtmf_state, bad_dtmf_digit,
// truncated; Offset is the stream offset of the failing message.
type DecodeError struct {
	Code   string
	Offset uint64
	Kind   byte
	Msg    string
}

func (e *DecodeError) Error() string { return e.Msg }

// Policy says what a Decoder does with kinds the dialect does not define.
type Policy int

const (
	Reject Policy = iota
	Skip
	Keep
)

// Options configure a Decoder.
type Options struct {
	Dialect        Dialect
	Unknown        Policy
	MaxPayload     int // 0 means 65535; negative means 0 bytes
	BytesPerSample int // 2 (default) or 1 (G.711)
}

// Decoder decodes a stream incrementally: Feed bytes, call Next until it
// returns nil. After an error it keeps returning that error.
type Decoder struct {
	opts     Options
	buf      []byte
	consumed uint64
	err      error
}

// NewDecoder makes a decoder.
func NewDecoder(opts Options) *Decoder {
	switch {
	case opts.MaxPayload < 0:
		opts.MaxPayload = 0 // a limit of 0 bytes
	case opts.MaxPayload == 0 || opts.MaxPayload > MaxPayload:
		opts.MaxPayload = MaxPayload
	}
	if opts.BytesPerSample != 1 {
		opts.BytesPerSample = 2
	}
	return &Decoder{opts: opts}
}

// Feed appends bytes.
func (d *Decoder) Feed(b []byte) { d.buf = append(d.buf, b...) }

// Consumed is the stream offset of the first byte not yet decoded.
func (d *Decoder) Consumed() uint64 { return d.consumed }

// Buffered is how many bytes wait for the rest of their message.
func (d *Decoder) Buffered() int { return len(d.buf) }

func (d *Decoder) fail(code string, kind byte, format string, args ...any) error {
	what := fmt.Sprintf("unknown kind 0x%02x", kind)
	if IsKnownKind(kind, d.opts.Dialect) {
		what = fmt.Sprintf("%s (0x%02x)", KindName(kind, d.opts.Dialect), kind)
	}
	return &DecodeError{Code: code, Offset: d.consumed, Kind: kind,
		Msg: fmt.Sprintf("%s at offset %d: %s", what, d.consumed, fmt.Sprintf(format, args...))}
}

// Next returns the next whole message, nil when more bytes are needed, or a *DecodeError.
func (d *Decoder) Next() (Message, error) {
	for d.err == nil {
		if len(d.buf) < HeaderSize {
			return nil, nil
		}
		kind := d.buf[0]
		length := int(d.buf[1])<<8 | int(d.buf[2])
		if err := d.checkHeader(kind, length); err != nil {
			d.err = err
			break
		}
		if len(d.buf) < HeaderSize+length {
			return nil, nil
		}
		payload := append([]byte(nil), d.buf[HeaderSize:HeaderSize+length]...)
		m, err := d.parse(kind, payload)
		if err != nil {
			d.err = err
			break
		}
		d.buf = d.buf[HeaderSize+length:]
		d.consumed += uint64(HeaderSize + length)
		if m != nil {
			return m, nil
		}
	}
	return nil, d.err
}

func (d *Decoder) checkHeader(kind byte, length int) error {
	dialect := d.opts.Dialect
	if length > d.opts.MaxPayload {
		return d.fail("too_large", kind, "payload is %d bytes, which exceeds the maximum of %d", length, d.opts.MaxPayload)
	}
	if !IsKnownKind(kind, dialect) {
		if d.opts.Unknown == Reject {
			return d.fail("unknown_kind", kind, "kind is not defined in the %s dialect", dialect)
		}
		return nil
	}
	want := map[byte]int{KindHangup: 0, KindUUID: 16, KindDTMF: 6, KindDigitOrControl: 1}
	if w, ok := want[kind]; ok && length != w {
		return d.fail("bad_length", kind, "payload is %d bytes, expected %d", length, w)
	}
	if AudioRate(kind) != 0 {
		if length == 0 {
			return d.fail("empty_audio", kind, "audio payload is empty")
		}
		if length%d.opts.BytesPerSample != 0 {
			return d.fail("odd_audio", kind, "audio payload is %d bytes, an odd length for 16-bit samples", length)
		}
	}
	return nil
}

func (d *Decoder) parse(kind byte, p []byte) (Message, error) {
	dialect := d.opts.Dialect
	if !IsKnownKind(kind, dialect) {
		if d.opts.Unknown == Keep {
			return Unknown{kind, p}, nil
		}
		return nil, nil
	}
	switch kind {
	case KindHangup:
		return Hangup{}, nil
	case KindUUID:
		var u UUID
		copy(u[:], p)
		return u, nil
	case KindDTMF:
		if p[0] > 1 {
			return nil, d.fail("bad_dtmf_state", kind, "DTMF state is %d, expected 1 (start) or 0 (stop)", p[0])
		}
		if !IsDTMFDigit(p[1]) {
			return nil, d.fail("bad_dtmf_digit", kind, "DTMF digit is byte 0x%02x", p[1])
		}
		return DTMF{Start: p[0] == 1, Digit: p[1], DurationMs: binary.LittleEndian.Uint32(p[2:])}, nil
	case KindDigitOrControl:
		if dialect == Extended {
			return Control{p[0]}, nil
		}
		if !IsDTMFDigit(p[0]) {
			return nil, d.fail("bad_dtmf_digit", kind, "DTMF digit is byte 0x%02x", p[0])
		}
		return DTMFDigit{p[0]}, nil
	case KindError:
		return Error{p}, nil
	}
	return Audio{Rate: AudioRate(kind), PCM: p}, nil
}

// ---------------------------------------------------------------- encoding

// ErrRefused wraps refusals by the dialect and peer rules.
var ErrRefused = errors.New("refused by the dialect")

// Encode returns the message's bytes (header included). It fails with an
// error wrapping ErrRefused when the peer must not receive the kind in the
// dialect (stock Asterisk takes only audio and hangup; 0x02 and control
// exist only in the extended dialect; unknown kinds go only to a server),
// and with another error when the message is malformed.
func Encode(m Message, d Dialect, to Peer) ([]byte, error) {
	switch v := m.(type) {
	case Audio:
		if _, ok := AudioKind(v.Rate); !ok {
			return nil, fmt.Errorf("wire: no AudioSocket kind for %d Hz", v.Rate)
		}
		if len(v.PCM) == 0 || len(v.PCM)%2 != 0 {
			return nil, fmt.Errorf("wire: audio of %d bytes: need an even, non-zero length (EncodeRaw for G.711)", len(v.PCM))
		}
	case DTMF:
		if !IsDTMFDigit(v.Digit) {
			return nil, fmt.Errorf("wire: byte 0x%02x is not a DTMF digit", v.Digit)
		}
	case DTMFDigit:
		if !IsDTMFDigit(v.Digit) {
			return nil, fmt.Errorf("wire: byte 0x%02x is not a DTMF digit", v.Digit)
		}
	}
	if len(m.Payload()) > MaxPayload {
		return nil, fmt.Errorf("wire: payload of %d bytes is more than a header carries", len(m.Payload()))
	}
	if err := checkAllowed(m, d, to); err != nil {
		return nil, err
	}
	return EncodeRaw(m.Kind(), m.Payload()), nil
}

func checkAllowed(m Message, d Dialect, to Peer) error {
	refuse := func(why string) error {
		return fmt.Errorf("%w: the %s dialect cannot send %s (0x%02x)%s", ErrRefused, d, KindName(m.Kind(), d), m.Kind(), why)
	}
	switch m.(type) {
	case Hangup, Audio:
		return nil
	case Unknown:
		if IsKnownKind(m.Kind(), d) {
			return refuse(": the kind is defined; send the typed message")
		}
		if to == ToAsterisk {
			return refuse(" to Asterisk: Asterisk hangs up on kinds it does not know")
		}
		return nil
	}
	if d == Asterisk {
		switch m.(type) {
		case DTMF, Control:
			return refuse(": only the extended dialect has it")
		}
		if to == ToAsterisk {
			return refuse(" to Asterisk: stock Asterisk hangs up on any kind but audio and hangup")
		}
		return nil
	}
	if _, ok := m.(DTMFDigit); ok {
		return refuse(": the extended dialect sends DTMF as 0x02 start/stop")
	}
	return nil
}

// EncodeRaw frames kind and payload without any check.
func EncodeRaw(kind byte, payload []byte) []byte {
	out := make([]byte, HeaderSize, HeaderSize+len(payload))
	out[0], out[1], out[2] = kind, byte(len(payload)>>8), byte(len(payload))
	return append(out, payload...)
}

// Describe gives the message's fields in the golden vectors' notation
// (tests/testdata/wire/README.md): "type=0x10 kind=audio length=4 rate=8000 samples=2".
func Describe(m Message, d Dialect, bytesPerSample int) string {
	p := m.Payload()
	s := fmt.Sprintf("type=0x%02x kind=%s length=%d", m.Kind(), KindName(m.Kind(), d), len(p))
	switch v := m.(type) {
	case UUID:
		s += " uuid=" + v.String()
	case DTMF:
		state := "stop"
		if v.Start {
			state = "start"
		}
		s += fmt.Sprintf(" state=%s digit=%c duration_ms=%d", state, v.Digit, v.DurationMs)
	case DTMFDigit:
		s += fmt.Sprintf(" digit=%c", v.Digit)
	case Control:
		s += fmt.Sprintf(" code=%d control=%s", v.Code, ControlName(v.Code))
	case Audio:
		if bytesPerSample != 1 {
			bytesPerSample = 2
		}
		s += fmt.Sprintf(" rate=%d samples=%d", v.Rate, len(p)/bytesPerSample)
	case Error:
		s += " payload=" + hex.EncodeToString(p) + " flags=" + strings.Join(ErrorFlagNames(v.Flags()), "|")
	case Unknown:
		s += " payload=" + hex.EncodeToString(p)
	}
	return s
}
