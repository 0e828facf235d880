// Package bridge is the Go client SDK for audiosocket-bridge.
//
// Push mode: NewHandlerServer(handler) is a bridgepb.CallHandlerServiceServer; the
// bridge dials it once per call, the SDK accepts and runs handler(ctx, call).
// Listen and Serve run it on a server of their own.
// Pull mode: Dial(target) and Client.Work (claim loops on every address of
// the target) or Client.Claim (one call). Either way a *Call gives the call's
// metadata, its events on a channel, and blocking command methods that
// return the command's result.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
	"google.golang.org/protobuf/proto"
)

// Event is what Call.Events delivers: *bridgepb.AudioChunk, *bridgepb.DtmfEvent,
// *bridgepb.ControlEvent, *bridgepb.MarkResolved, *bridgepb.PlayoutEvent,
// *bridgepb.CommandResult (for commands sent without the SDK), and last
// *bridgepb.CallEnded (with the AsteriskError when Asterisk reported one). Use a type switch.
type Event = proto.Message

// Handler handles one call, in push and pull mode alike. When it returns
// while the call is still up, the SDK hangs up; either way the SDK then
// discards the call's unread events, so read Events inside the handler.
// A panic in the handler is logged and ends the call, not the process.
type Handler func(ctx context.Context, call *Call)

// ErrCallEnded matches (errors.Is) the error of every command sent to a call
// that has ended, or that ended before the bridge answered: the result code
// RESULT_CODE_CALL_ENDED. Ending is a normal event: CallEnded still arrives
// on Events.
var ErrCallEnded = errors.New("the call has ended")

// CommandError is a command whose result was not RESULT_CODE_OK.
type CommandError struct{ Result *bridgepb.CommandResult }

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s %s: %s: %s", commandName(e.Result.GetCommand()), e.Result.GetCommandId(), e.Result.GetCode(), e.Result.GetMessage())
}

// commandName is the command's name as in CallCommand ("play", "send_dtmf", ...).
func commandName(k bridgepb.CommandKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "COMMAND_KIND_"))
}

// Is makes errors.Is(err, ErrCallEnded) true for a CALL_ENDED result.
func (e *CommandError) Is(target error) bool {
	return target == ErrCallEnded && e.Result.GetCode() == bridgepb.ResultCode_RESULT_CODE_CALL_ENDED
}

// Code is the result code of err when it is a *CommandError, UNSPECIFIED otherwise.
func Code(err error) bridgepb.ResultCode {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.Result.GetCode()
	}
	return bridgepb.ResultCode_RESULT_CODE_UNSPECIFIED
}

// link is one call's stream: push (server side) or pull (client side).
type link interface {
	send(*bridgepb.CallCommand) error
	recv() (*bridgepb.CallEvent, error)
	closeSend()
}

type reply struct {
	msg proto.Message
	err error
}

// Call is one call the backend holds.
type Call struct {
	// Started is the call's metadata (CallStarted).
	Started *bridgepb.CallStarted

	cfg     *config
	link    link
	sendMu  sync.Mutex
	mu      sync.Mutex
	rate    uint32 // push: the rate the accept's result confirmed
	nextID  int
	pending map[string]chan reply
	marks   map[string][]chan bridgepb.MarkResolution
	queue   []Event
	queued  time.Duration // audio in queue
	dropped uint64
	wake    chan struct{}
	events  chan Event
	ended   *bridgepb.CallEnded
	lost    error // the stream failed (no CallEnded from the bridge)
	done    chan struct{}
}

func newCall(started *bridgepb.CallStarted, l link, cfg *config) *Call {
	c := &Call{Started: started, cfg: cfg, link: l, pending: map[string]chan reply{},
		marks: map[string][]chan bridgepb.MarkResolution{},
		wake:  make(chan struct{}, 1), events: make(chan Event), done: make(chan struct{})}
	go c.readLoop()
	go c.pump()
	return c
}

// CallID is the AudioSocket UUID.
func (c *Call) CallID() string { return c.Started.GetCallId() }

// Listener is the name of the listener the call arrived on.
func (c *Call) Listener() string { return c.Started.GetListener() }

// Dialect is the AudioSocket dialect of the call.
func (c *Call) Dialect() bridgepb.Dialect { return c.Started.GetDialect() }

// SampleRate is the rate of the audio exchanged with the backend, in Hz. In
// push mode CallStarted precedes the accept, so this is the rate the
// accept's result confirmed (WithMedia's rate, or the call's).
func (c *Call) SampleRate() uint32 {
	c.mu.Lock()
	r := c.rate
	c.mu.Unlock()
	if r != 0 {
		return r
	}
	if r := c.Started.GetBackendSampleRateHz(); r != 0 {
		return r
	}
	return c.Started.GetCallSampleRateHz()
}

// Events delivers the call's events in order; the channel closes after
// CallEnded. Caller audio waiting to be read is bounded (WithAudioBuffer,
// 1 s by default): when the reader falls behind, the oldest AudioChunk is
// dropped (a gap in offset_samples, counted by DroppedAudio), as the bridge
// does for a slow backend. Other events are never dropped, and command
// results never wait for the reader.
func (c *Call) Events() <-chan Event { return c.events }

// DroppedAudio is how many AudioChunks were dropped because Events was not
// read in time.
func (c *Call) DroppedAudio() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// Ended is the CallEnded event, nil while the call is up.
func (c *Call) Ended() *bridgepb.CallEnded {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

func (c *Call) readLoop() {
	for {
		ev, err := c.link.recv()
		if err != nil {
			c.end(&bridgepb.CallEnded{Reason: bridgepb.CallEndReason_CALL_END_REASON_BACKEND_LOST,
				Detail: "the stream ended without CallEnded: " + err.Error()}, err)
			return
		}
		if c.dispatch(ev) {
			return
		}
	}
}

// dispatch routes one event; true after CallEnded. It never blocks.
func (c *Call) dispatch(ev *bridgepb.CallEvent) bool {
	switch e := ev.GetEvent().(type) {
	case *bridgepb.CallEvent_Result:
		if c.answer(e.Result.GetCommandId(), e.Result) {
			return false
		}
		c.push(e.Result)
	case *bridgepb.CallEvent_Cleared:
		if c.answer(e.Cleared.GetCommandId(), e.Cleared) {
			return false
		}
		c.push(e.Cleared)
	case *bridgepb.CallEvent_Ended:
		c.end(e.Ended, nil)
		return true
	case *bridgepb.CallEvent_Audio:
		c.push(e.Audio)
	case *bridgepb.CallEvent_Dtmf:
		c.push(e.Dtmf)
	case *bridgepb.CallEvent_Control:
		c.push(e.Control)
	case *bridgepb.CallEvent_Mark:
		c.resolveMark(e.Mark.GetName(), e.Mark.GetResolution())
		c.push(e.Mark)
	case *bridgepb.CallEvent_Playout:
		c.push(e.Playout)
	}
	return false
}

func (c *Call) answer(id string, m proto.Message) bool {
	c.mu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ok {
		ch <- reply{msg: m}
	}
	return ok
}

// resolveMark hands a resolution to the oldest Mark waiting on that name.
func (c *Call) resolveMark(name string, r bridgepb.MarkResolution) {
	c.mu.Lock()
	waiting := c.marks[name]
	if len(waiting) == 0 {
		c.mu.Unlock()
		return
	}
	ch := waiting[0]
	if len(waiting) == 1 {
		delete(c.marks, name)
	} else {
		c.marks[name] = waiting[1:]
	}
	c.mu.Unlock()
	ch <- r // buffered, one value each
}

func audioDuration(a *bridgepb.AudioChunk) time.Duration {
	rate := a.GetSampleRateHz()
	if rate == 0 {
		return 0
	}
	return time.Duration(len(a.GetPcm())/2) * time.Second / time.Duration(rate)
}

func (c *Call) push(e Event) {
	c.mu.Lock()
	c.queue = append(c.queue, e)
	if a, ok := e.(*bridgepb.AudioChunk); ok {
		c.queued += audioDuration(a)
		for c.queued > c.cfg.audioBuffer {
			i := 0
			for i < len(c.queue) {
				if _, ok := c.queue[i].(*bridgepb.AudioChunk); ok {
					break
				}
				i++
			}
			if i >= len(c.queue)-1 { // keep the newest chunk
				break
			}
			c.queued -= audioDuration(c.queue[i].(*bridgepb.AudioChunk))
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			c.dropped++
		}
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// pump moves the queue into the events channel.
func (c *Call) pump() {
	defer close(c.events)
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.mu.Unlock()
			<-c.wake
			continue
		}
		e := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		if a, ok := e.(*bridgepb.AudioChunk); ok {
			c.queued -= audioDuration(a)
		}
		c.mu.Unlock()
		c.events <- e
		if _, last := e.(*bridgepb.CallEnded); last {
			return
		}
	}
}

// end records the call's end: lost is the stream's error when the bridge's
// CallEnded never came.
func (c *Call) end(ended *bridgepb.CallEnded, lost error) {
	c.mu.Lock()
	if c.ended != nil {
		c.mu.Unlock()
		return
	}
	c.ended = ended
	c.lost = lost
	pending := c.pending
	c.pending = map[string]chan reply{}
	marks := c.marks
	c.marks = map[string][]chan bridgepb.MarkResolution{}
	c.mu.Unlock()
	for id, ch := range pending {
		if lost != nil {
			ch <- reply{err: fmt.Errorf("the stream failed before an answer: %w", lost)}
		} else {
			ch <- reply{msg: c.endedResult(id, "the call ended ("+ended.GetReason().String()+") before an answer")}
		}
	}
	for _, waiting := range marks {
		for _, ch := range waiting {
			ch <- bridgepb.MarkResolution_MARK_RESOLUTION_CALL_ENDED
		}
	}
	c.push(ended)
	close(c.done)
}

func (c *Call) endedResult(id, msg string) *bridgepb.CommandResult {
	return &bridgepb.CommandResult{CommandId: id, Code: bridgepb.ResultCode_RESULT_CODE_CALL_ENDED, Message: msg}
}

// Send sends any command with a fresh command_id and waits for its answer
// (*bridgepb.CommandResult, or *bridgepb.ClearResult for a clear). It does
// not turn a failed code into an error: on a call that has ended the answer
// is a RESULT_CODE_CALL_ENDED result. The error is for ctx, or for a stream
// that failed (the transport's error, e.g. the connection to the bridge
// broke).
func (c *Call) Send(ctx context.Context, cmd *bridgepb.CallCommand) (proto.Message, error) {
	return c.exchange(ctx, func(id string) error {
		cmd.CommandId = id
		return c.link.send(cmd)
	})
}

// exchange sends one command with a fresh command_id (send sets it on the
// message and writes it) and waits for its answer, as Send does.
func (c *Call) exchange(ctx context.Context, send func(id string) error) (proto.Message, error) {
	c.mu.Lock()
	c.nextID++
	id := "c" + strconv.Itoa(c.nextID)
	if c.ended != nil {
		reason := c.ended.GetReason().String()
		c.mu.Unlock()
		return c.endedResult(id, "the call has ended ("+reason+")"), nil
	}
	ch := make(chan reply, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	c.sendMu.Lock()
	err := send(id)
	c.sendMu.Unlock()
	if err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		// A send fails when the stream is over: the reader tells whether the
		// bridge ended the call (a normal end) or the stream broke.
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
			return nil, err
		}
		c.mu.Lock()
		lost, ended := c.lost, c.ended
		c.mu.Unlock()
		if lost != nil {
			return nil, fmt.Errorf("send: %w", lost)
		}
		return c.endedResult(id, "the call has ended ("+ended.GetReason().String()+")"), nil
	}
	select {
	case r := <-ch:
		return r.msg, r.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *Call) checked(ctx context.Context, cmd *bridgepb.CallCommand, kind bridgepb.CommandKind) (proto.Message, error) {
	m, err := c.Send(ctx, cmd)
	return checkedResult(m, err, kind)
}

// checkedResult names the answered command in a result the SDK made itself
// (the call ended first) and turns a failed code into a *CommandError.
func checkedResult(m proto.Message, err error, kind bridgepb.CommandKind) (proto.Message, error) {
	if err != nil {
		return nil, err
	}
	if r, ok := m.(*bridgepb.CommandResult); ok {
		if r.Command == bridgepb.CommandKind_COMMAND_KIND_UNSPECIFIED {
			r.Command = kind
		}
		if r.GetCode() != bridgepb.ResultCode_RESULT_CODE_OK {
			return r, &CommandError{r}
		}
	}
	return m, nil
}

func (c *Call) result(ctx context.Context, cmd *bridgepb.CallCommand, kind bridgepb.CommandKind) (*bridgepb.CommandResult, error) {
	m, err := c.checked(ctx, cmd, kind)
	r, _ := m.(*bridgepb.CommandResult)
	return r, err
}

// Play queues LINEAR16 audio for the caller (any even length) under
// responseID (may be empty), at the backend rate.
func (c *Call) Play(ctx context.Context, pcm []byte, responseID string) (*bridgepb.CommandResult, error) {
	return c.result(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_Play{
		Play: &bridgepb.PlayAudio{Pcm: pcm, ResponseId: responseID}}}, bridgepb.CommandKind_COMMAND_KIND_PLAY)
}

// PlayAt is Play with audio at another rate (converted by the bridge).
func (c *Call) PlayAt(ctx context.Context, pcm []byte, rateHz uint32, responseID string) (*bridgepb.CommandResult, error) {
	return c.result(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_Play{
		Play: &bridgepb.PlayAudio{Pcm: pcm, SampleRateHz: rateHz, ResponseId: responseID}}}, bridgepb.CommandKind_COMMAND_KIND_PLAY)
}

// Mark queues a mark after the audio queued so far and blocks until the
// caller has heard up to it: it returns MARK_RESOLUTION_PLAYED, CLEARED (a
// clear removed it) or CALL_ENDED (also on a call that has already ended).
// The *bridgepb.MarkResolved event is delivered on Events too. Safe to call
// from the handler (the resolution does not wait for Events to be read);
// while it blocks, audio for an unread Events beyond WithAudioBuffer is
// dropped, so run it in a goroutine to keep reading. The error is for ctx,
// a failed stream, or a refused mark.
func (c *Call) Mark(ctx context.Context, name string) (bridgepb.MarkResolution, error) {
	ch := make(chan bridgepb.MarkResolution, 1)
	c.mu.Lock()
	if c.ended != nil {
		c.mu.Unlock()
		return bridgepb.MarkResolution_MARK_RESOLUTION_CALL_ENDED, nil
	}
	c.marks[name] = append(c.marks[name], ch) // before sending: the resolution may be quick
	c.mu.Unlock()
	_, err := c.result(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_Mark{
		Mark: &bridgepb.Mark{Name: name}}}, bridgepb.CommandKind_COMMAND_KIND_MARK)
	if errors.Is(err, ErrCallEnded) {
		return bridgepb.MarkResolution_MARK_RESOLUTION_CALL_ENDED, nil
	}
	if err != nil && ctx.Err() == nil {
		c.dropMark(name, ch) // refused: no resolution will come
		return bridgepb.MarkResolution_MARK_RESOLUTION_UNSPECIFIED, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		// The waiter stays queued so later marks of that name pair correctly.
		return bridgepb.MarkResolution_MARK_RESOLUTION_UNSPECIFIED, ctx.Err()
	}
}

func (c *Call) dropMark(name string, ch chan bridgepb.MarkResolution) {
	c.mu.Lock()
	defer c.mu.Unlock()
	waiting := c.marks[name]
	for i, w := range waiting {
		if w == ch {
			c.marks[name] = append(waiting[:i:i], waiting[i+1:]...)
			break
		}
	}
	if len(c.marks[name]) == 0 {
		delete(c.marks, name)
	}
}

// Clear discards queued audio (responseID's only, or all when empty) and
// returns what was played and discarded per response. The marks it removes
// resolve CLEARED; their MarkResolved events arrive on Events after it
// returns.
func (c *Call) Clear(ctx context.Context, responseID string) (*bridgepb.ClearResult, error) {
	m, err := c.checked(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_Clear{
		Clear: &bridgepb.ClearAudio{ResponseId: responseID}}}, bridgepb.CommandKind_COMMAND_KIND_CLEAR)
	if err != nil {
		return nil, err
	}
	if r, ok := m.(*bridgepb.ClearResult); ok {
		return r, nil
	}
	return &bridgepb.ClearResult{CommandId: cmdID(m)}, nil
}

func cmdID(m proto.Message) string {
	if r, ok := m.(*bridgepb.CommandResult); ok {
		return r.GetCommandId()
	}
	return ""
}

// SendDTMF plays digits toward the caller; returns after the last tone
// (toneMs, gapMs 0 mean the bridge's defaults).
func (c *Call) SendDTMF(ctx context.Context, digits string, toneMs, gapMs uint32) (*bridgepb.CommandResult, error) {
	return c.result(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_SendDtmf{
		SendDtmf: &bridgepb.SendDtmf{Digits: digits, ToneMs: toneMs, GapMs: gapMs}}}, bridgepb.CommandKind_COMMAND_KIND_SEND_DTMF)
}

// SendControl sends a control signal toward Asterisk (extended dialect only).
func (c *Call) SendControl(ctx context.Context, t bridgepb.ControlType) (*bridgepb.CommandResult, error) {
	return c.result(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_SendControl{
		SendControl: &bridgepb.SendControl{Type: t}}}, bridgepb.CommandKind_COMMAND_KIND_SEND_CONTROL)
}

// Hangup ends the call (after the queued audio when afterPlayout).
func (c *Call) Hangup(ctx context.Context, afterPlayout bool) (*bridgepb.CommandResult, error) {
	r, err := c.result(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_Hangup{
		Hangup: &bridgepb.Hangup{AfterPlayout: afterPlayout}}}, bridgepb.CommandKind_COMMAND_KIND_HANGUP)
	if errors.Is(err, ErrCallEnded) &&
		c.Ended().GetReason() == bridgepb.CallEndReason_CALL_END_REASON_BACKEND_HUNG_UP {
		return &bridgepb.CommandResult{CommandId: r.GetCommandId(), Code: bridgepb.ResultCode_RESULT_CODE_OK, Command: bridgepb.CommandKind_COMMAND_KIND_HANGUP}, nil
	}
	return r, err
}

// run runs the handler (a panic is logged and ends the call), then finishes the call.
func (c *Call) run(ctx context.Context, handler Handler) {
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.finish(fctx)
	}()
	defer func() {
		if p := recover(); p != nil {
			c.cfg.logger.Error("audiosocket-bridge: handler panicked", "call_id", c.CallID(),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	handler(ctx, c)
}

// finish runs after the handler: hang up if the call is still up, wait for its end.
func (c *Call) finish(ctx context.Context) {
	if c.Ended() == nil {
		_, _ = c.Hangup(ctx, false)
		select {
		case <-c.done:
		case <-ctx.Done():
		}
	}
	c.link.closeSend()
	go func() { // nobody reads Events any more: let the pump finish
		for range c.events {
		}
	}()
}
