package main

// Everything that depends on the bridge's proto is in this file: relay.go
// talks to the backend only through backendCall and the plain command type
// below. If the service is renamed or the commands are reshaped, only this
// file changes.

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type cmdKind int

const (
	cmdOther cmdKind = iota // anything this relay does not implement
	cmdAccept
	cmdReject
	cmdPlay
	cmdMark
	cmdClear
	cmdHangup
)

// command is one backend command, independent of the proto.
type command struct {
	kind       cmdKind
	id         string // command_id
	pcm        []byte // play
	rate       int    // play: 0 = the call's rate
	responseID string // play: its response; clear: the one to clear ("" = all)
	mark       string // mark: its name
	detail     string // reject
}

type endReason int

const (
	endCallerHungUp endReason = iota
	endBackendHungUp
	endBackendLost
)

type markResolution int

const (
	markPlayed markResolution = iota + 1
	markCleared
	markCallEnded
)

type responseAccount struct {
	id                    string
	playedMs, discardedMs uint32
}

// Per-call end statistics reported in CallEnded.
type callStats struct {
	framesIn, framesOut, bytesIn, bytesOut, droppedInMs, silenceFrames uint64
}

type backend struct {
	client pb.CallHandlerServiceClient
}

func newBackend(target string) (*backend, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &backend{client: pb.NewCallHandlerServiceClient(conn)}, nil
}

// backendCall is one HandleCall stream. Send* may be called from any
// goroutine: one sender goroutine owns stream.Send.
type backendCall struct {
	stream     pb.CallHandlerService_HandleCallClient
	cancel     context.CancelFunc
	out        chan *pb.HandleCallRequest // nil entry = half-close
	senderDone chan struct{}
}

// startCall opens the stream, sends CallStarted and waits for the backend's
// answer (accept, or an error for anything else).
func (b *backend) startCall(callID, peer string, rate int, acceptTimeout time.Duration) (*backendCall, error) {
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := b.client.HandleCall(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	started := &pb.HandleCallRequest{Event: &pb.CallEvent{Event: &pb.CallEvent_Started{Started: &pb.CallStarted{
		CallId: callID, Listener: "gorelay", Dialect: pb.Dialect_DIALECT_ASTERISK, PeerAddress: peer,
		CallSampleRateHz: uint32(rate), BackendSampleRateHz: uint32(rate),
		CallEncoding: pb.AudioEncoding_AUDIO_ENCODING_LINEAR16, StartTime: timestamppb.Now(),
	}}}}
	if err := stream.Send(started); err != nil {
		cancel()
		return nil, err
	}
	answer := make(chan error, 1)
	go func() {
		resp, err := stream.Recv()
		switch {
		case err != nil:
			answer <- err
		case resp.GetAccept() != nil:
			if r := resp.GetAccept().GetMedia().GetSampleRateHz(); r != 0 && int(r) != rate {
				answer <- fmt.Errorf("backend asked for %d Hz; this relay does not resample", r)
				return
			}
			answer <- nil
		case resp.GetReject() != nil:
			answer <- fmt.Errorf("rejected: %s", resp.GetReject().GetDetail())
		default:
			answer <- errors.New("first command is not accept")
		}
	}()
	select {
	case err = <-answer:
	case <-time.After(acceptTimeout):
		err = errors.New("accept timeout")
	}
	if err != nil {
		cancel()
		return nil, err
	}
	c := &backendCall{stream: stream, cancel: cancel, out: make(chan *pb.HandleCallRequest, 256),
		senderDone: make(chan struct{})}
	go c.sender()
	return c, nil
}

func (c *backendCall) sender() {
	defer close(c.senderDone)
	for m := range c.out {
		if m == nil {
			c.stream.CloseSend()
			return
		}
		if err := c.stream.Send(m); err != nil {
			return
		}
	}
}

func (c *backendCall) send(ev *pb.CallEvent) {
	select {
	case c.out <- &pb.HandleCallRequest{Event: ev}:
	case <-c.senderDone:
	}
}

// sendAudio never blocks: false when the queue toward the backend is full
// (the frame is dropped).
func (c *backendCall) sendAudio(pcm []byte, rate int, seq, offset uint64) bool {
	ev := &pb.CallEvent{Event: &pb.CallEvent_Audio{Audio: &pb.AudioChunk{
		Pcm: pcm, SampleRateHz: uint32(rate), SequenceNumber: seq, OffsetSamples: offset}}}
	select {
	case c.out <- &pb.HandleCallRequest{Event: ev}:
		return true
	default:
		return false
	}
}

func (c *backendCall) sendMark(name string, r markResolution) {
	res := map[markResolution]pb.MarkResolution{
		markPlayed:    pb.MarkResolution_MARK_RESOLUTION_PLAYED,
		markCleared:   pb.MarkResolution_MARK_RESOLUTION_CLEARED,
		markCallEnded: pb.MarkResolution_MARK_RESOLUTION_CALL_ENDED,
	}[r]
	c.send(&pb.CallEvent{Event: &pb.CallEvent_Mark{Mark: &pb.MarkResolved{Name: name, Resolution: res}}})
}

func (c *backendCall) sendCleared(commandID string, accounts []responseAccount, discardedMs uint32) {
	res := &pb.ClearResult{CommandId: commandID, DiscardedMs: discardedMs}
	for _, a := range accounts {
		res.Responses = append(res.Responses, &pb.ResponsePlayout{
			ResponseId: a.id, PlayedMs: a.playedMs, DiscardedMs: a.discardedMs})
	}
	c.send(&pb.CallEvent{Event: &pb.CallEvent_Cleared{Cleared: res}})
}

// sendUnsupported answers a command this relay does not implement.
func (c *backendCall) sendUnsupported(cmd command) {
	c.send(&pb.CallEvent{Event: &pb.CallEvent_Result{Result: &pb.CommandResult{
		CommandId: cmd.id, Code: pb.ResultCode_RESULT_CODE_UNSUPPORTED, Message: "not in gorelay"}}})
}

// finish sends CallEnded and half-closes; the backend then finishes the
// stream (recv returns an error) and close releases it.
func (c *backendCall) finish(why endReason, st callStats) {
	reason := map[endReason]pb.CallEndReason{
		endCallerHungUp:  pb.CallEndReason_CALL_END_REASON_CALLER_HUNG_UP,
		endBackendHungUp: pb.CallEndReason_CALL_END_REASON_BACKEND_HUNG_UP,
		endBackendLost:   pb.CallEndReason_CALL_END_REASON_BACKEND_LOST,
	}[why]
	c.send(&pb.CallEvent{Event: &pb.CallEvent_Ended{Ended: &pb.CallEnded{Reason: reason, Stats: &pb.CallStats{
		FramesFromCaller: st.framesIn, FramesToCaller: st.framesOut, BytesFromCaller: st.bytesIn,
		BytesToCaller: st.bytesOut, InboundDroppedMs: st.droppedInMs, SilenceFrames: st.silenceFrames}}}})
	select {
	case c.out <- nil:
	case <-c.senderDone:
	}
}

func (c *backendCall) close() { c.cancel() }

// recv returns the next command; an error when the stream ended.
func (c *backendCall) recv() (command, error) {
	resp, err := c.stream.Recv()
	if err != nil {
		return command{}, err
	}
	switch resp.GetResponse().(type) {
	case *pb.HandleCallResponse_Accept:
		return command{kind: cmdAccept, id: resp.GetAccept().GetCommandId()}, nil
	case *pb.HandleCallResponse_Reject:
		return command{kind: cmdReject, detail: resp.GetReject().GetDetail()}, nil
	}
	pc := resp.GetCommand()
	cmd := command{id: pc.GetCommandId()}
	switch x := pc.GetCommand().(type) {
	case *pb.CallCommand_Play:
		cmd.kind, cmd.pcm, cmd.rate, cmd.responseID = cmdPlay, x.Play.GetPcm(), int(x.Play.GetSampleRateHz()), x.Play.GetResponseId()
	case *pb.CallCommand_Mark:
		cmd.kind, cmd.mark = cmdMark, x.Mark.GetName()
	case *pb.CallCommand_Clear:
		cmd.kind, cmd.responseID = cmdClear, x.Clear.GetResponseId()
	case *pb.CallCommand_Hangup:
		cmd.kind = cmdHangup
	default:
		cmd.kind = cmdOther
	}
	return cmd, nil
}
