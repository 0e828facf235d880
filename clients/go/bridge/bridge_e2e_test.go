package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/wire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding/gzip"
)

const testUUID = "40325ec2-5efd-4bd3-805f-53576e581d13"

// setup starts the bridge in mode with a backend, connects a scripted
// Asterisk that sends the UUID and one frame, and returns the SDK's call.
func setup(t *testing.T, mode, listen string, d wire.Dialect) (*asterisk, *Call) {
	t.Helper()
	return setupWith(t, mode, listen, d)
}

// setupWith is setup with options for the pull client.
func setupWith(t *testing.T, mode, listen string, d wire.Dialect, opts ...Option) (*asterisk, *Call) {
	// (In push mode the options are the backend server's.)
	t.Helper()
	ctx := testCtx(t)
	var b *bridgeProcess
	calls := make(chan *Call, 1)
	var claimed chan *Call
	if mode == "push" {
		// The handler keeps the call until the test is over: once a handler
		// returns, the SDK discards the call's unread events.
		release := make(chan struct{})
		srv, err := Listen("127.0.0.1:0", func(ctx context.Context, call *Call) {
			calls <- call
			select {
			case <-release:
			case <-ctx.Done():
			}
		}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Stop)
		b = startBridge(t, listen, "--backend="+srv.Target())
		// Registered after the bridge so that it runs before the bridge is
		// stopped: the bridge waits for the backend to end its streams.
		t.Cleanup(func() { close(release) })
	} else {
		b = startBridge(t, listen, "--mode=pull")
		client, err := Dial(b.grpcTarget(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		claimed = make(chan *Call, 1)
		go func() {
			call, err := client.Claim(ctx, Claim{})
			if err != nil {
				t.Errorf("claim: %v", err)
				close(claimed)
				return
			}
			claimed <- call
		}()
		calls = claimed
	}
	a := dialAsterisk(t, b.asPort, d)
	u, _ := wire.ParseUUID(testUUID)
	a.send(u)
	a.send(wire.Audio{Rate: 8000, PCM: numberedFrame(0)})
	select {
	case call := <-calls:
		if call == nil {
			t.Fatal("no call")
		}
		return a, call
	case <-time.After(wait):
		t.Fatalf("no call reached the backend:\n%s", b.Output())
	}
	return nil, nil
}

// next returns the next event of type T.
func next[T Event](t *testing.T, call *Call) T {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-call.Events():
			if !ok {
				var zero T
				t.Fatalf("the call ended before a %T: %v", zero, call.Ended())
			}
			if v, ok := e.(T); ok {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("no %T", zero)
		}
	}
}

func pcmOf(v int16, n int) []byte {
	b := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

func count(m wire.Message, v int16) int {
	a, ok := m.(wire.Audio)
	if !ok {
		return 0
	}
	n := 0
	for i := 0; i+1 < len(a.PCM); i += 2 {
		if int16(binary.LittleEndian.Uint16(a.PCM[i:])) == v {
			n++
		}
	}
	return n
}

func forModes(t *testing.T, f func(t *testing.T, mode string)) {
	for _, mode := range []string{"push", "pull"} {
		t.Run(mode, func(t *testing.T) { f(t, mode) })
	}
}

func TestCallMetadata(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		_, call := setup(t, mode, "127.0.0.1:0", wire.Asterisk)
		if call.CallID() != testUUID || call.Listener() != "default" || call.Dialect() != bridgepb.Dialect_DIALECT_ASTERISK || call.SampleRate() != 8000 {
			t.Errorf("metadata: %v", call.Started)
		}
		if !strings.HasPrefix(call.Started.GetPeerAddress(), "127.0.0.1:") {
			t.Errorf("peer %q", call.Started.GetPeerAddress())
		}
	})
}

func TestEchoIsByteExact(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) { echoIsByteExact(t, mode) })
}

// A worker that compresses what it sends (grpc-go compresses every message
// once a compressor is named) is read as gRPC's own servers read it.
func TestEchoIsByteExactFromAWorkerThatCompresses(t *testing.T) {
	echoIsByteExact(t, "pull", WithDialOptions(grpc.WithDefaultCallOptions(grpc.UseCompressor(gzip.Name))))
}

// A backend that compresses what it sends though the bridge never asked
// (grpc-go's legacy RPCCompressor does) is read too.
func TestEchoIsByteExactFromABackendThatCompresses(t *testing.T) {
	//lint:ignore SA1019 the deprecated option is the one that compresses unasked
	echoIsByteExact(t, "push", WithServerOptions(grpc.RPCCompressor(grpc.NewGZIPCompressor())))
}

// A backend that compresses what it sends because the bridge lists gzip in
// grpc-accept-encoding is read (grpc-go's SetSendCompressor refuses an
// encoding the client did not list).
func TestEchoIsByteExactFromABackendThatCompressesAsTheBridgeAccepts(t *testing.T) {
	compress := grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := grpc.SetSendCompressor(ss.Context(), gzip.Name); err != nil {
			t.Errorf("the bridge does not accept gzip: %v", err)
			return err
		}
		return handler(srv, ss)
	})
	echoIsByteExact(t, "push", WithServerOptions(compress))
}

func echoIsByteExact(t *testing.T, mode string, opts ...Option) {
	a, call := setupWith(t, mode, "127.0.0.1:0", wire.Asterisk, opts...)
	ctx := testCtx(t)
	sent := numberedFrame(0)
	for i := 1; i < 25; i++ {
		sent = append(sent, numberedFrame(i)...)
		a.send(wire.Audio{Rate: 8000, PCM: numberedFrame(i)})
	}
	for i := 0; i < 25; i++ {
		chunk := next[*bridgepb.AudioChunk](t, call)
		if chunk.GetSequenceNumber() != uint64(i) || chunk.GetOffsetSamples() != uint64(i*160) {
			t.Errorf("chunk %d: seq %d offset %d", i, chunk.GetSequenceNumber(), chunk.GetOffsetSamples())
		}
		if _, err := call.Play(ctx, chunk.GetPcm(), "echo"); err != nil {
			t.Fatal(err)
		}
	}
	var heard []byte
	for len(heard) < len(sent) {
		m := a.read(wait)
		if m == nil {
			t.Fatal("the bridge closed or went quiet")
		}
		au, ok := m.(wire.Audio)
		if !ok {
			continue
		}
		if au.Rate != 8000 || len(au.PCM) != 320 {
			t.Fatalf("frame %d Hz, %d bytes", au.Rate, len(au.PCM))
		}
		if len(heard) == 0 && bytes.Equal(au.PCM, make([]byte, 320)) {
			continue
		}
		heard = append(heard, au.PCM...)
	}
	if !bytes.Equal(heard[:len(sent)], sent) {
		t.Error("the echo differs from what was sent")
	}
}

func TestAsteriskDTMFDigit(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		a, call := setup(t, mode, "127.0.0.1:0", wire.Asterisk)
		a.send(wire.DTMFDigit{Digit: '7'})
		d := next[*bridgepb.DtmfEvent](t, call)
		if d.GetDigit() != "7" || d.GetPhase() != bridgepb.DtmfPhase_DTMF_PHASE_END_ONLY || d.GetSource() != bridgepb.DtmfSource_DTMF_SOURCE_SIGNALLED || d.GetOffsetSamples() != 160 {
			t.Errorf("dtmf %v", d)
		}
	})
}

func TestExtendedDTMFBothWays(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		a, call := setup(t, mode, "127.0.0.1:0,dialect=extended,name=ext", wire.Extended)
		if call.Dialect() != bridgepb.Dialect_DIALECT_EXTENDED || call.Listener() != "ext" {
			t.Errorf("metadata %v", call.Started)
		}
		a.send(wire.DTMF{Start: true, Digit: '#'})
		a.send(wire.DTMF{Start: false, Digit: '#', DurationMs: 120})
		begin := next[*bridgepb.DtmfEvent](t, call)
		end := next[*bridgepb.DtmfEvent](t, call)
		if begin.GetPhase() != bridgepb.DtmfPhase_DTMF_PHASE_BEGIN || end.GetPhase() != bridgepb.DtmfPhase_DTMF_PHASE_END || end.GetDurationMs() != 120 || end.GetDigit() != "#" {
			t.Errorf("begin %v end %v", begin, end)
		}
		// Toward the caller: 0x02 start/stop.
		res := make(chan error, 1)
		go func() { _, err := call.SendDTMF(testCtx(t), "12", 80, 60); res <- err }()
		var seen []wire.DTMF
		for len(seen) < 4 {
			m := a.read(wait)
			if m == nil {
				t.Fatal("no DTMF reached the caller")
			}
			if d, ok := m.(wire.DTMF); ok {
				seen = append(seen, d)
			}
		}
		want := []wire.DTMF{{Start: true, Digit: '1'}, {Digit: '1', DurationMs: 80}, {Start: true, Digit: '2'}, {Digit: '2', DurationMs: 80}}
		for i := range want {
			if seen[i] != want[i] {
				t.Errorf("dtmf %d: %+v, want %+v", i, seen[i], want[i])
			}
		}
		if err := <-res; err != nil {
			t.Errorf("SendDTMF: %v", err)
		}
	})
}

func TestAsteriskDialectRefusesControl(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		_, call := setup(t, mode, "127.0.0.1:0", wire.Asterisk)
		_, err := call.SendControl(testCtx(t), bridgepb.ControlType_CONTROL_TYPE_ANSWER)
		if Code(err) != bridgepb.ResultCode_RESULT_CODE_UNSUPPORTED {
			t.Errorf("SendControl: %v", err)
		}
	})
}

func TestClearAccounting(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		a, call := setup(t, mode, "127.0.0.1:0", wire.Asterisk)
		ctx := testCtx(t)
		must := func(_ *bridgepb.CommandResult, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(call.Play(ctx, pcmOf(500, 16000), "r1"))
		markDone := make(chan bridgepb.MarkResolution, 1)
		go func() { r, _ := call.Mark(ctx, "after-r1"); markDone <- r }()
		must(call.Play(ctx, pcmOf(700, 8000), "r2"))
		heard := 0
		for heard < 8*160 {
			m := a.read(wait)
			if m == nil {
				t.Fatal("no audio")
			}
			heard += count(m, 500)
		}
		for { // the mark is queued: the bridge answered its command
			call.mu.Lock()
			queued := len(call.marks) == 1 && len(call.pending) == 0
			call.mu.Unlock()
			if queued {
				break
			}
			time.Sleep(time.Millisecond)
		}
		cleared, err := call.Clear(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		rs := cleared.GetResponses()
		if len(rs) != 2 || rs[0].GetResponseId() != "r1" || rs[0].GetPlayedMs()+rs[0].GetDiscardedMs() != 2000 ||
			rs[1].GetResponseId() != "r2" || rs[1].GetPlayedMs() != 0 || rs[1].GetDiscardedMs() != 1000 ||
			cleared.GetDiscardedMs() != rs[0].GetDiscardedMs()+1000 {
			t.Fatalf("clear result %v", cleared)
		}
		if r := <-markDone; r != bridgepb.MarkResolution_MARK_RESOLUTION_CLEARED {
			t.Errorf("Mark returned %v", r)
		}
		mark := next[*bridgepb.MarkResolved](t, call)
		if mark.GetName() != "after-r1" || mark.GetResolution() != bridgepb.MarkResolution_MARK_RESOLUTION_CLEARED {
			t.Errorf("mark %v", mark)
		}
		for _, m := range a.readFor(500 * time.Millisecond) {
			heard += count(m, 500)
			if count(m, 700) > 0 {
				t.Error("r2 was heard")
			}
		}
		if heard != int(rs[0].GetPlayedMs())*8 {
			t.Errorf("heard %d samples of r1, the account says %d ms", heard, rs[0].GetPlayedMs())
		}
	})
}

// Mark blocks until the caller heard the audio before it (no events read
// meanwhile, as from inside a handler), and the event still follows.
func TestMarkWaitsUntilHeard(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		a, call := setup(t, mode, "127.0.0.1:0", wire.Asterisk)
		ctx := testCtx(t)
		heard := make(chan int, 1)
		go func() { // the caller: count the samples of r1 it receives
			n := 0
			for m := a.read(wait); m != nil && n < 8000; m = a.read(wait) {
				n += count(m, 1000)
			}
			heard <- n
		}()
		start := time.Now()
		if _, err := call.Play(ctx, pcmOf(1000, 8000), "r1"); err != nil { // 1 s
			t.Fatal(err)
		}
		r, err := call.Mark(ctx, "m1")
		if err != nil || r != bridgepb.MarkResolution_MARK_RESOLUTION_PLAYED {
			t.Fatalf("Mark: %v %v", r, err)
		}
		if elapsed := time.Since(start); elapsed < 900*time.Millisecond {
			t.Errorf("Mark returned after %v, before 1 s of audio could play", elapsed)
		}
		if n := <-heard; n != 8000 {
			t.Errorf("the caller heard %d samples of r1", n)
		}
		if m := next[*bridgepb.MarkResolved](t, call); m.GetName() != "m1" || m.GetResolution() != bridgepb.MarkResolution_MARK_RESOLUTION_PLAYED {
			t.Errorf("mark event %v", m)
		}
		// On an ended call a mark resolves CALL_ENDED at once.
		a.send(wire.Hangup{})
		<-call.Done()
		if r, err := call.Mark(ctx, "late"); err != nil || r != bridgepb.MarkResolution_MARK_RESOLUTION_CALL_ENDED {
			t.Errorf("Mark after the end: %v %v", r, err)
		}
	})
}

func TestBackendHangup(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		a, call := setup(t, mode, "127.0.0.1:0", wire.Asterisk)
		if _, err := call.Hangup(testCtx(t), false); err != nil {
			t.Fatal(err)
		}
		select {
		case <-call.Done():
		case <-time.After(wait):
			t.Fatal("the call did not end")
		}
		if call.Ended().GetReason() != bridgepb.CallEndReason_CALL_END_REASON_BACKEND_HUNG_UP {
			t.Errorf("ended %v", call.Ended())
		}
		if !a.waitClosed() {
			t.Fatal("the socket stayed open")
		}
		hangup := false
		for _, m := range a.received {
			_, ok := m.(wire.Hangup)
			hangup = hangup || ok
		}
		if !hangup {
			t.Error("no 0x00 before the close")
		}
	})
}

func TestCallerHangupClosesEvents(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		a, call := setup(t, mode, "127.0.0.1:0", wire.Asterisk)
		a.send(wire.Hangup{})
		var last Event
		timeout := time.After(wait)
	loop:
		for {
			select {
			case e, ok := <-call.Events():
				if !ok {
					break loop
				}
				last = e
			case <-timeout:
				t.Fatal("events did not close")
			}
		}
		ended, ok := last.(*bridgepb.CallEnded)
		if !ok || ended.GetReason() != bridgepb.CallEndReason_CALL_END_REASON_CALLER_HUNG_UP {
			t.Errorf("last event %v", last)
		}
		if _, err := call.Play(testCtx(t), pcmOf(1, 2), ""); Code(err) != bridgepb.ResultCode_RESULT_CODE_CALL_ENDED || !errors.Is(err, ErrCallEnded) {
			t.Errorf("Play after the end: %v", err)
		}
	})
}
