package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/internal/testenv"
	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/wire"
)

const wait = 15 * time.Second // generous: a loaded 2-core machine

// bridgeProcess is the real bridge on loopback with ephemeral ports.
type bridgeProcess struct {
	*testenv.Proc
	asPort   int
	grpcPort int
}

func startBridge(t *testing.T, listen string, flags ...string) *bridgeProcess {
	t.Helper()
	b := &bridgeProcess{Proc: testenv.Start(t, testenv.BridgeBin(), testenv.BridgeArgs(listen, flags...)...)}
	line := b.Wait(t, `^.*"event":"listening".*$`)[0]
	var l struct {
		Audiosocket string `json:"audiosocket"`
		GRPCPort    int    `json:"grpc_port"`
	}
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		t.Fatalf("the bridge's listening line %q: %v", line, err)
	}
	_, port, _ := net.SplitHostPort(l.Audiosocket)
	fmt.Sscan(port, &b.asPort)
	b.grpcPort = l.GRPCPort
	return b
}

func (b *bridgeProcess) grpcTarget() string { return fmt.Sprintf("127.0.0.1:%d", b.grpcPort) }

// asterisk plays Asterisk's side of one call with the wire package.
type asterisk struct {
	t        *testing.T
	conn     net.Conn
	dialect  wire.Dialect
	dec      *wire.Decoder
	received []wire.Message
	closed   bool
}

func dialAsterisk(t *testing.T, port int, d wire.Dialect) *asterisk {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &asterisk{t: t, conn: conn, dialect: d, dec: wire.NewDecoder(wire.Options{Dialect: d})}
}

func (a *asterisk) send(m wire.Message) {
	a.t.Helper()
	b, err := wire.Encode(m, a.dialect, wire.ToServer)
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.conn.Write(b); err != nil {
		a.t.Fatal(err)
	}
}

// read returns the next message, nil when the socket closed or timeout passed.
func (a *asterisk) read(timeout time.Duration) wire.Message {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65536)
	for {
		m, err := a.dec.Next()
		if err != nil {
			a.t.Fatal(err)
		}
		if m != nil {
			a.received = append(a.received, m)
			return m
		}
		if a.closed {
			return nil
		}
		_ = a.conn.SetReadDeadline(deadline)
		n, err := a.conn.Read(buf)
		a.dec.Feed(buf[:n])
		if err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				a.closed = true
			} else {
				return nil
			}
		}
	}
}

func (a *asterisk) readFor(d time.Duration) []wire.Message {
	var out []wire.Message
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m := a.read(time.Until(deadline))
		if m == nil {
			break
		}
		out = append(out, m)
	}
	return out
}

func (a *asterisk) waitClosed() bool {
	deadline := time.Now().Add(wait)
	for !a.closed && time.Now().Before(deadline) {
		a.read(time.Until(deadline))
	}
	return a.closed
}

func numberedFrame(n int) []byte {
	b := make([]byte, 320)
	for i := 0; i < 160; i++ {
		v := int16((n*997+i*7)%30000 - 15000)
		if v == 0 {
			v = 1
		}
		b[2*i], b[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	return b
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
