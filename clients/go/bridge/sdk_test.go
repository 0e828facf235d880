package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/wire"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// placeCall connects a scripted Asterisk to an AudioSocket port and starts a call.
func placeCall(t *testing.T, port int) (*asterisk, string) {
	t.Helper()
	a := dialAsterisk(t, port, wire.Asterisk)
	id := newUUID()
	u, err := wire.ParseUUID(id)
	if err != nil {
		t.Fatal(err)
	}
	a.send(u)
	a.send(wire.Audio{Rate: 8000, PCM: numberedFrame(0)})
	return a, id
}

// claimPlacedCall dials the pull-mode bridge b with opts, claims a call while
// one is placed from Asterisk's side, and returns both ends; the test fails
// when no call is claimed.
func claimPlacedCall(t *testing.T, b *bridgeProcess, opts ...Option) (*Call, *asterisk) {
	t.Helper()
	client, err := Dial(b.grpcTarget(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	claimed := make(chan *Call, 1)
	go func() {
		call, err := client.Claim(testCtx(t), Claim{})
		if err != nil {
			t.Error(err)
		}
		claimed <- call
	}()
	time.Sleep(300 * time.Millisecond)
	a, _ := placeCall(t, b.asPort)
	call := <-claimed
	if call == nil {
		t.Fatal("no call")
	}
	return call, a
}

// logBuffer collects slog output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// answering is a handler that records the calls it gets and hangs up.
type answering struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (h *answering) handle(ctx context.Context, call *Call) {
	h.mu.Lock()
	if h.ids == nil {
		h.ids = map[string]bool{}
	}
	h.ids[call.CallID()] = true
	h.mu.Unlock()
	_, _ = call.Hangup(ctx, false)
}

func (h *answering) has(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ids[id]
}

// answered places a call on port and waits until the handler got it and the
// caller was hung up on.
func answered(t *testing.T, h *answering, port int) {
	t.Helper()
	a, id := placeCall(t, port)
	if !a.waitClosed() {
		t.Fatalf("call on port %d: the socket stayed open", port)
	}
	if !h.has(id) {
		t.Fatalf("call on port %d was not answered by the worker", port)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func workInBackground(t *testing.T, c *Client, perAddress int, h Handler) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() { done <- c.Work(ctx, perAddress, Claim{}, h); close(finished) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(wait):
			t.Error("Work did not return after its context ended")
		}
	})
	return done
}

// A push call's rate is the one the accept's result confirmed: CallStarted
// precedes the accept and announces the call's rate.
func TestPushSampleRateFromAccept(t *testing.T) {
	calls := make(chan *Call, 1)
	srv, err := Listen("127.0.0.1:0", func(ctx context.Context, call *Call) {
		calls <- call
		<-call.Done()
	}, WithMedia(&bridgepb.MediaOptions{SampleRateHz: 16000}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	b := startBridge(t, "127.0.0.1:0", "--backend="+srv.Target())
	a, _ := placeCall(t, b.asPort)
	call := <-calls
	if call.Started.GetBackendSampleRateHz() != 8000 || call.SampleRate() != 16000 {
		t.Errorf("CallStarted says %d Hz, SampleRate() %d Hz; want 16000", call.Started.GetBackendSampleRateHz(), call.SampleRate())
	}
	if chunk := next[*bridgepb.AudioChunk](t, call); chunk.GetSampleRateHz() != 16000 {
		t.Errorf("audio at %d Hz", chunk.GetSampleRateHz())
	}
	a.send(wire.Hangup{})
}

// A command pending when the stream breaks returns the transport's error,
// not a CALL_ENDED result the bridge never sent.
func TestSendReturnsTransportErrors(t *testing.T) {
	b := startBridge(t, "127.0.0.1:0", "--mode=pull")
	call, _ := claimPlacedCall(t, b)
	res := make(chan error, 1)
	go func() { _, err := call.SendDTMF(testCtx(t), "123456789", 1000, 100); res <- err }() // ~10 s
	time.Sleep(300 * time.Millisecond)
	_ = b.Cmd.Process.Kill()
	select {
	case err := <-res:
		var ce *CommandError
		if err == nil || errors.As(err, &ce) || errors.Is(err, ErrCallEnded) || status.Code(err) != codes.Unavailable {
			t.Errorf("SendDTMF across a broken stream: %v, want the transport's UNAVAILABLE", err)
		}
	case <-time.After(wait):
		t.Fatal("SendDTMF did not return")
	}
	<-call.Done()
	if call.Ended().GetReason() != bridgepb.CallEndReason_CALL_END_REASON_BACKEND_LOST {
		t.Errorf("ended %v", call.Ended())
	}
}

// Events keeps at most WithAudioBuffer of unread audio: the oldest chunks
// are dropped and counted, the newest and every other event kept.
func TestEventsBoundedDropOldest(t *testing.T) {
	b := startBridge(t, "127.0.0.1:0", "--mode=pull")
	call, a := claimPlacedCall(t, b, WithAudioBuffer(200*time.Millisecond))
	for i := 1; i < 50; i++ {
		a.send(wire.Audio{Rate: 8000, PCM: numberedFrame(i)})
	}
	a.send(wire.DTMFDigit{Digit: '5'})
	deadline := time.Now().Add(wait)
	for call.DroppedAudio() < 39 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var seqs []uint64
	dtmf := false
	for len(seqs) < 50-int(call.DroppedAudio()) || !dtmf {
		select {
		case e := <-call.Events():
			switch e := e.(type) {
			case *bridgepb.AudioChunk:
				seqs = append(seqs, e.GetSequenceNumber())
			case *bridgepb.DtmfEvent:
				dtmf = true
			}
		case <-time.After(wait):
			t.Fatalf("got %v, dtmf %v, dropped %d", seqs, dtmf, call.DroppedAudio())
		}
	}
	// 50 chunks of 20 ms, 200 ms kept (one may be in flight to the channel).
	if d := call.DroppedAudio(); d < 39 || d > 40 || len(seqs) > 11 || seqs[len(seqs)-1] != 49 {
		t.Errorf("dropped %d, read %v", d, seqs)
	}
	a.send(wire.Hangup{})
}

// Work returns errors retrying cannot fix, naming the address.
func TestWorkReturnsPermanentErrors(t *testing.T) {
	t.Run("push_mode_bridge", func(t *testing.T) {
		srv, err := Listen("127.0.0.1:0", func(context.Context, *Call) {})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Stop)
		b := startBridge(t, "127.0.0.1:0", "--backend="+srv.Target())
		client, _ := Dial(b.grpcTarget())
		defer client.Close()
		select {
		case err := <-workInBackground(t, client, 2, (&answering{}).handle):
			if status.Code(err) != codes.FailedPrecondition || !Permanent(err) || !strings.Contains(err.Error(), b.grpcTarget()) {
				t.Errorf("Work: %v", err)
			}
		case <-time.After(wait):
			t.Fatal("Work kept retrying against a push-mode bridge")
		}
	})
	t.Run("token", func(t *testing.T) {
		token := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		b := startBridge(t, "127.0.0.1:0", "--mode=pull", "--auth_token_file="+token)
		client, _ := Dial(b.grpcTarget())
		defer client.Close()
		select {
		case err := <-workInBackground(t, client, 2, (&answering{}).handle):
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("Work without the token: %v", err)
			}
		case <-time.After(wait):
			t.Fatal("Work kept retrying without the token")
		}
		// With the token, calls are answered.
		client2, _ := Dial(b.grpcTarget(), WithToken("s3cret"))
		defer client2.Close()
		h := &answering{}
		workInBackground(t, client2, 1, h.handle)
		time.Sleep(500 * time.Millisecond)
		answered(t, h, b.asPort)
	})
}

// Transient errors are retried with backoff, logged sparingly; the worker
// finds the bridge once it is up.
func TestWorkRetriesTransientErrors(t *testing.T) {
	port := freePort(t)
	var logs logBuffer
	client, err := Dial(fmt.Sprintf("127.0.0.1:%d", port), WithLogger(logs.logger()),
		WithBackoff(50*time.Millisecond, 400*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	h := &answering{}
	done := workInBackground(t, client, 3, h.handle)
	time.Sleep(2 * time.Second) // nothing listens: many retries
	select {
	case err := <-done:
		t.Fatalf("Work returned on a transient error: %v", err)
	default:
	}
	b := startBridge(t, "127.0.0.1:0", "--mode=pull", fmt.Sprintf("--grpc_listen=127.0.0.1:%d", port))
	time.Sleep(1500 * time.Millisecond) // the next retry (at most 400 ms away) claims
	answered(t, h, b.asPort)
	out := logs.String()
	if n := strings.Count(out, "cannot claim calls"); n != 1 {
		t.Errorf("%d failure lines, want 1 for the address:\n%s", n, out)
	}
	if !strings.Contains(out, "claiming calls again") {
		t.Errorf("no recovery line:\n%s", out)
	}
}

// Pull mode across replicas: claims on every address of the target, calls
// arriving at any replica answered.
func TestWorkAcrossReplicas(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		var bridges []*bridgeProcess
		var targets []string
		for i := 0; i < 3; i++ {
			b := startBridge(t, "127.0.0.1:0", "--mode=pull", "--claim_timeout=5s")
			bridges = append(bridges, b)
			targets = append(targets, b.grpcTarget())
		}
		h := answerInBackground(t, strings.Join(targets, ","))
		time.Sleep(time.Second)
		for _, b := range bridges {
			answered(t, h, b.asPort)
		}
	})
	t.Run("dns_name_follows_changes", func(t *testing.T) {
		// Three replicas behind one name and port (three loopback addresses);
		// the name's answer changes as replicas come and go.
		port := freePort(t)
		var bridges []*bridgeProcess
		for i := 1; i <= 3; i++ {
			bridges = append(bridges, startBridge(t, "127.0.0.1:0", "--mode=pull", "--claim_timeout=5s",
				fmt.Sprintf("--grpc_listen=127.0.0.%d:%d", i, port)))
		}
		var answer atomic.Value
		answer.Store([]string{"127.0.0.1", "127.0.0.2"})
		lookup := func(_ context.Context, host string) ([]string, error) {
			if host != "bridges.test" {
				return nil, fmt.Errorf("unknown host %q", host)
			}
			return answer.Load().([]string), nil
		}
		h := answerInBackground(t, fmt.Sprintf("dns:///bridges.test:%d", port), WithLookup(lookup),
			WithResolveInterval(200*time.Millisecond))
		time.Sleep(time.Second)
		answered(t, h, bridges[0].asPort)
		answered(t, h, bridges[1].asPort)
		// The third replica joins, the first leaves.
		answer.Store([]string{"127.0.0.2", "127.0.0.3"})
		time.Sleep(1500 * time.Millisecond)
		answered(t, h, bridges[2].asPort)
		answered(t, h, bridges[1].asPort)
		// The departed replica's idle claims were closed: its calls wait.
		if connected, err := connectedOn(t, bridges[0]); err != nil || connected {
			t.Errorf("a call on the departed replica: connected %v (%v)", connected, err)
		}
	})
}

// answerInBackground dials target and answers its calls with two workers
// per address until the test ends; then the workers stop and the client
// closes.
func answerInBackground(t *testing.T, target string, opts ...Option) *answering {
	t.Helper()
	client, err := Dial(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	h := &answering{}
	workInBackground(t, client, 2, h.handle)
	return h
}

// connectedOn places a call on b and reports whether a worker claimed it.
func connectedOn(t *testing.T, b *bridgeProcess) (bool, error) {
	t.Helper()
	a, id := placeCall(t, b.asPort)
	defer a.conn.Close()
	c, err := Dial(b.grpcTarget())
	if err != nil {
		return false, err
	}
	defer c.Close()
	time.Sleep(500 * time.Millisecond)
	calls, err := c.ListCalls(testCtx(t), "")
	if err != nil {
		return false, err
	}
	for _, ci := range calls {
		if ci.GetCallId() == id {
			return ci.GetState() == bridgepb.CallState_CALL_STATE_CONNECTED, nil
		}
	}
	return false, fmt.Errorf("call %s not listed", id)
}

// The push server checks the bridge's bearer token.
func TestPushToken(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &answering{}
	srv, err := Listen("127.0.0.1:0", h.handle, WithToken("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	b := startBridge(t, "127.0.0.1:0", "--backend="+srv.Target(), "--auth_token_file="+token)
	answered(t, h, b.asPort)

	other := filepath.Join(t.TempDir(), "other")
	if err := os.WriteFile(other, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b2 := startBridge(t, "127.0.0.1:0", "--backend="+srv.Target(), "--auth_token_file="+other, "--accept_timeout=1s")
	a, id := placeCall(t, b2.asPort)
	a.waitClosed()
	if h.has(id) {
		t.Error("a bridge with the wrong token got its call answered")
	}
}

// A handler that panics ends its call, not the process.
func TestHandlerPanicEndsTheCall(t *testing.T) {
	var logs logBuffer
	srv, err := Listen("127.0.0.1:0", func(context.Context, *Call) { panic("boom") }, WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	b := startBridge(t, "127.0.0.1:0", "--backend="+srv.Target())
	a, _ := placeCall(t, b.asPort)
	if !a.waitClosed() {
		t.Fatal("the call stayed up")
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("the panic was not logged:\n%s", logs.String())
	}
}
