package wire

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The golden vectors in tests/testdata/wire/ (format: its README.md).
type vector struct {
	name, where, dialect, peer, policy, encode, errCode string
	maxPayload, bytesPerSample                          int
	errOffset                                           uint64
	data                                                []byte
	messages                                            []string
}

func vectorDir(t *testing.T) string {
	if dir := os.Getenv("WIRE_VECTORS"); dir != "" {
		return dir
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "tests", "testdata", "wire")
}

func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

func loadVectors(t *testing.T) []*vector {
	files, err := filepath.Glob(filepath.Join(vectorDir(t), "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vector files in %s", vectorDir(t))
	}
	sort.Strings(files)
	var out []*vector
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, raw := range strings.Split(string(text), "\n") {
			line := strings.TrimSpace(stripComment(raw))
			if line == "" {
				continue
			}
			key, value, _ := strings.Cut(line, ":")
			value = strings.TrimSpace(value)
			if key == "vector" {
				out = append(out, &vector{name: value, where: fmt.Sprintf("%s:%d", filepath.Base(f), n+1),
					policy: "reject", maxPayload: MaxPayload, bytesPerSample: 2})
				continue
			}
			v := out[len(out)-1]
			switch key {
			case "dialect":
				v.dialect = value
			case "peer":
				v.peer = value
			case "policy":
				v.policy = value
			case "encode":
				v.encode = value
			case "max_payload":
				v.maxPayload, _ = strconv.Atoi(value)
			case "bytes_per_sample":
				v.bytesPerSample, _ = strconv.Atoi(value)
			case "hex":
				b, err := hex.DecodeString(strings.ReplaceAll(value, " ", ""))
				if err != nil {
					t.Fatalf("%s: %v", v.where, err)
				}
				v.data = append(v.data, b...)
			case "message":
				v.messages = append(v.messages, value)
			case "error":
				code, off, _ := strings.Cut(value, " ")
				v.errCode = code
				v.errOffset, _ = strconv.ParseUint(strings.TrimPrefix(off, "offset="), 10, 64)
			default:
				t.Fatalf("%s: unknown key %q", v.where, key)
			}
		}
	}
	return out
}

func (v *vector) options() Options {
	o := Options{Dialect: Asterisk, BytesPerSample: v.bytesPerSample, MaxPayload: v.maxPayload}
	if v.dialect == "extended" {
		o.Dialect = Extended
	}
	if v.maxPayload == 0 {
		o.MaxPayload = -1
	}
	o.Unknown = map[string]Policy{"reject": Reject, "skip": Skip, "keep": Keep}[v.policy]
	return o
}

func TestVectorFilesParseWithUniqueNames(t *testing.T) {
	vs := loadVectors(t)
	if len(vs) < 60 {
		t.Errorf("%d vectors, want at least 60", len(vs))
	}
	seen := map[string]bool{}
	for _, v := range vs {
		if seen[v.name] {
			t.Errorf("%s: duplicate name %s", v.where, v.name)
		}
		seen[v.name] = true
	}
}

func TestGoldenDecode(t *testing.T) {
	for _, v := range loadVectors(t) {
		for _, chunk := range []int{len(v.data), 1, 2, 5} {
			t.Run(fmt.Sprintf("%s/chunks_of_%d", v.name, chunk), func(t *testing.T) {
				d := NewDecoder(v.options())
				var got []string
				var err error
			feed:
				for i := 0; i < len(v.data); i += chunk {
					d.Feed(v.data[i:min(i+chunk, len(v.data))])
					for {
						var m Message
						m, err = d.Next()
						if err != nil {
							break feed
						}
						if m == nil {
							break
						}
						got = append(got, Describe(m, v.options().Dialect, v.bytesPerSample))
					}
				}
				if strings.Join(got, "\n") != strings.Join(v.messages, "\n") {
					t.Errorf("%s: decoded\n%s\nwant\n%s", v.where, strings.Join(got, "\n"), strings.Join(v.messages, "\n"))
				}
				switch v.errCode {
				case "":
					if err != nil || d.Buffered() != 0 || d.Consumed() != uint64(len(v.data)) {
						t.Errorf("%s: err %v, buffered %d, consumed %d", v.where, err, d.Buffered(), d.Consumed())
					}
				case "truncated":
					if err != nil || d.Consumed() != v.errOffset || d.Buffered() != len(v.data)-int(v.errOffset) {
						t.Errorf("%s: err %v, consumed %d, buffered %d", v.where, err, d.Consumed(), d.Buffered())
					}
				default:
					var de *DecodeError
					if !errors.As(err, &de) || de.Code != v.errCode || de.Offset != v.errOffset {
						t.Errorf("%s: error %v, want %s at %d", v.where, err, v.errCode, v.errOffset)
					} else if !strings.Contains(de.Error(), fmt.Sprintf(" at offset %d:", v.errOffset)) {
						t.Errorf("%s: message %q", v.where, de.Error())
					}
				}
			})
		}
	}
}

func fields(text string) map[string]string {
	out := map[string]string{}
	for _, pair := range strings.Fields(text) {
		k, val, _ := strings.Cut(pair, "=")
		out[k] = val
	}
	return out
}

// build makes the typed message the table describes; audio samples come from the frame.
func build(t *testing.T, text string, frame []byte) Message {
	f := fields(text)
	payload := frame[HeaderSize:]
	switch f["kind"] {
	case "hangup":
		return Hangup{}
	case "uuid":
		u, err := ParseUUID(f["uuid"])
		if err != nil {
			t.Fatal(err)
		}
		return u
	case "dtmf":
		ms, _ := strconv.ParseUint(f["duration_ms"], 10, 32)
		return DTMF{Start: f["state"] == "start", Digit: f["digit"][0], DurationMs: uint32(ms)}
	case "dtmf_digit":
		return DTMFDigit{f["digit"][0]}
	case "control":
		c, _ := strconv.Atoi(f["code"])
		return Control{byte(c)}
	case "audio":
		r, _ := strconv.Atoi(f["rate"])
		return Audio{Rate: r, PCM: payload}
	case "error":
		b, _ := hex.DecodeString(f["payload"])
		return Error{b}
	}
	k, _ := strconv.ParseUint(strings.TrimPrefix(f["type"], "0x"), 16, 8)
	b, _ := hex.DecodeString(f["payload"])
	return Unknown{byte(k), b}
}

func TestGoldenEncode(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.encode == "" {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			opts := v.options()
			peer := ToAsterisk
			if v.peer == "server" {
				peer = ToServer
			}
			var out []byte
			offset := 0
			for _, text := range v.messages {
				length := int(v.data[offset+1])<<8 | int(v.data[offset+2])
				frame := v.data[offset : offset+HeaderSize+length]
				m := build(t, text, frame)
				b, err := Encode(m, opts.Dialect, peer)
				if v.encode == "refused" {
					if !errors.Is(err, ErrRefused) {
						t.Errorf("%s: Encode gave %x, %v; want a refusal", v.where, b, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", v.where, err)
				}
				if string(b) != string(frame) {
					t.Errorf("%s: encoded % x, want % x", v.where, b, frame)
				}
				d := NewDecoder(opts)
				d.Feed(frame)
				one, err := d.Next()
				if err != nil || one == nil || Describe(one, opts.Dialect, v.bytesPerSample) != text {
					t.Errorf("%s: the frame decodes to %v, %v", v.where, one, err)
				}
				out = append(out, b...)
				offset += len(frame)
			}
			if string(out) != string(v.data) {
				t.Errorf("%s: stream differs", v.where)
			}
		})
	}
}

func TestEncodeRefusesMalformed(t *testing.T) {
	for _, m := range []Message{Audio{8000, []byte{0, 0, 0}}, Audio{8000, nil}, Audio{11025, []byte{0, 0}}, DTMF{Digit: 'E'}} {
		if _, err := Encode(m, Extended, ToServer); err == nil || errors.Is(err, ErrRefused) {
			t.Errorf("Encode(%v) = %v, want a malformed-message error", m, err)
		}
	}
	if ControlName(4) != "answer" || ControlName(38) != "unknown(38)" {
		t.Error("control names")
	}
}
