// Package bridge is the Go client SDK for audiosocket-bridge.
//
// Push mode: NewHandlerServer(handler) is a bridgepb.CallHandlerServer; the
// bridge dials it once per call, the SDK accepts and runs handler(ctx, call).
// Pull mode: Dial(target) and Client.Claim (one call) or Client.Work (a
// claim loop per worker). Either way a *Call gives the call's metadata, its
// events on a channel, and blocking command methods that return the
// command's result.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
	"google.golang.org/protobuf/proto"
)

// Event is what Call.Events delivers: *bridgepb.AudioChunk, *bridgepb.DtmfEvent,
// *bridgepb.ControlEvent, *bridgepb.MarkResolved, *bridgepb.PlayoutEvent,
// *bridgepb.AsteriskError, *bridgepb.CommandResult (for commands sent without
// the SDK), and last *bridgepb.CallEnded. Use a type switch.
type Event = proto.Message

// Handler handles one call, in push and pull mode alike. When it returns
// while the call is still up, the SDK hangs up; either way the SDK then
// discards the call's unread events, so read Events inside the handler.
type Handler func(ctx context.Context, call *Call)

// CommandError is a command whose result was not RESULT_CODE_OK.
type CommandError struct{ Result *bridgepb.CommandResult }

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s %s: %s: %s", e.Result.GetCommand(), e.Result.GetCommandId(), e.Result.GetCode(), e.Result.GetMessage())
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

// Call is one call the backend holds.
type Call struct {
	// Started is the call's metadata (CallStarted).
	Started *bridgepb.CallStarted

	link    link
	sendMu  sync.Mutex
	mu      sync.Mutex
	nextID  int
	pending map[string]chan proto.Message
	queue   []Event
	wake    chan struct{}
	events  chan Event
	ended   *bridgepb.CallEnded
	done    chan struct{}
}

func newCall(started *bridgepb.CallStarted, l link) *Call {
	c := &Call{Started: started, link: l, pending: map[string]chan proto.Message{},
		wake: make(chan struct{}, 1), events: make(chan Event), done: make(chan struct{})}
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

// SampleRate is the rate of the audio exchanged with the backend, in Hz.
func (c *Call) SampleRate() uint32 {
	if r := c.Started.GetBackendSampleRateHz(); r != 0 {
		return r
	}
	return c.Started.GetCallSampleRateHz()
}

// Events delivers the call's events in order; the channel closes after CallEnded.
// The SDK buffers without limit, so a slow reader never blocks command results.
func (c *Call) Events() <-chan Event { return c.events }

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
				Detail: "the stream ended without CallEnded: " + err.Error()})
			return
		}
		if c.dispatch(ev) {
			return
		}
	}
}

// dispatch routes one event; true after CallEnded.
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
		c.end(e.Ended)
		return true
	case *bridgepb.CallEvent_Audio:
		c.push(e.Audio)
	case *bridgepb.CallEvent_Dtmf:
		c.push(e.Dtmf)
	case *bridgepb.CallEvent_Control:
		c.push(e.Control)
	case *bridgepb.CallEvent_Mark:
		c.push(e.Mark)
	case *bridgepb.CallEvent_Playout:
		c.push(e.Playout)
	case *bridgepb.CallEvent_AsteriskError:
		c.push(e.AsteriskError)
	}
	return false
}

func (c *Call) answer(id string, m proto.Message) bool {
	c.mu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ok {
		ch <- m
	}
	return ok
}

func (c *Call) push(e Event) {
	c.mu.Lock()
	c.queue = append(c.queue, e)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// pump moves the unbounded queue into the events channel.
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
		c.queue = c.queue[1:]
		c.mu.Unlock()
		c.events <- e
		if _, last := e.(*bridgepb.CallEnded); last {
			return
		}
	}
}

func (c *Call) end(ended *bridgepb.CallEnded) {
	c.mu.Lock()
	if c.ended != nil {
		c.mu.Unlock()
		return
	}
	c.ended = ended
	pending := c.pending
	c.pending = map[string]chan proto.Message{}
	c.mu.Unlock()
	for id, ch := range pending {
		ch <- &bridgepb.CommandResult{CommandId: id, Code: bridgepb.ResultCode_RESULT_CODE_CALL_ENDED,
			Message: "the call ended (" + ended.GetReason().String() + ") before an answer"}
	}
	c.push(ended)
	close(c.done)
}

// Send sends any command with a fresh command_id and waits for its answer
// (*bridgepb.CommandResult, or *bridgepb.ClearResult for a clear). It does
// not turn a failed code into an error; the error is for ctx or the stream.
func (c *Call) Send(ctx context.Context, cmd *bridgepb.CallCommand) (proto.Message, error) {
	c.mu.Lock()
	c.nextID++
	id := "c" + strconv.Itoa(c.nextID)
	cmd.CommandId = id
	if c.ended != nil {
		c.mu.Unlock()
		return &bridgepb.CommandResult{CommandId: id, Code: bridgepb.ResultCode_RESULT_CODE_CALL_ENDED,
			Message: "the call has ended"}, nil
	}
	ch := make(chan proto.Message, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	c.sendMu.Lock()
	err := c.link.send(cmd)
	c.sendMu.Unlock()
	if err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return &bridgepb.CommandResult{CommandId: id, Code: bridgepb.ResultCode_RESULT_CODE_CALL_ENDED,
			Message: "cannot send: " + err.Error()}, nil
	}
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *Call) checked(ctx context.Context, cmd *bridgepb.CallCommand, name string) (proto.Message, error) {
	m, err := c.Send(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if r, ok := m.(*bridgepb.CommandResult); ok {
		if r.Command == "" {
			r.Command = name
		}
		if r.GetCode() != bridgepb.ResultCode_RESULT_CODE_OK {
			return r, &CommandError{r}
		}
	}
	return m, nil
}

func (c *Call) result(ctx context.Context, cmd *bridgepb.CallCommand, name string) (*bridgepb.CommandResult, error) {
	m, err := c.checked(ctx, cmd, name)
	r, _ := m.(*bridgepb.CommandResult)
	return r, err
}

// Play queues LINEAR16 audio for the caller (any even length) under
// responseID (may be empty), at the backend rate.
func (c *Call) Play(ctx context.Context, pcm []byte, responseID string) (*bridgepb.CommandResult, error) {
	return c.result(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_Play{
		Play: &bridgepb.PlayAudio{Pcm: pcm, ResponseId: responseID}}}, "play")
}

// PlayAt is Play with audio at another rate (converted by the bridge).
func (c *Call) PlayAt(ctx context.Context, pcm []byte, rateHz uint32, responseID string) (*bridgepb.CommandResult, error) {
	return c.result(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_Play{
		Play: &bridgepb.PlayAudio{Pcm: pcm, SampleRateHz: rateHz, ResponseId: responseID}}}, "play")
}

// Mark queues a mark; a *bridgepb.MarkResolved event follows once the audio
// queued before it has played (or was cleared, or the call ended).
func (c *Call) Mark(ctx context.Context, name string) (*bridgepb.CommandResult, error) {
	return c.result(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_Mark{
		Mark: &bridgepb.Mark{Name: name}}}, "mark")
}

// Clear discards queued audio (responseID's only, or all when empty) and
// returns what was played and discarded per response. The MarkResolved
// (CLEARED) events it causes arrive on Events after it returns.
func (c *Call) Clear(ctx context.Context, responseID string) (*bridgepb.ClearResult, error) {
	m, err := c.checked(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_Clear{
		Clear: &bridgepb.ClearAudio{ResponseId: responseID}}}, "clear")
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
		SendDtmf: &bridgepb.SendDtmf{Digits: digits, ToneMs: toneMs, GapMs: gapMs}}}, "send_dtmf")
}

// SendControl sends a control signal toward Asterisk (extended dialect only).
func (c *Call) SendControl(ctx context.Context, t bridgepb.ControlType) (*bridgepb.CommandResult, error) {
	return c.result(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_SendControl{
		SendControl: &bridgepb.SendControl{Type: t}}}, "send_control")
}

// Hangup ends the call (after the queued audio when afterPlayout).
func (c *Call) Hangup(ctx context.Context, afterPlayout bool) (*bridgepb.CommandResult, error) {
	r, err := c.result(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_Hangup{
		Hangup: &bridgepb.Hangup{AfterPlayout: afterPlayout}}}, "hangup")
	if Code(err) == bridgepb.ResultCode_RESULT_CODE_CALL_ENDED &&
		c.Ended().GetReason() == bridgepb.CallEndReason_CALL_END_REASON_BACKEND_HUNG_UP {
		return &bridgepb.CommandResult{CommandId: r.GetCommandId(), Code: bridgepb.ResultCode_RESULT_CODE_OK, Command: "hangup"}, nil
	}
	return r, err
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
