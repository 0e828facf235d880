package bridge

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Client talks to the bridge's gRPC port (pull mode and call inspection).
type Client struct {
	Conn *grpc.ClientConn
	API  bridgepb.BridgeClient
}

// Dial connects to the bridge at target ("127.0.0.1:50051"), without TLS
// unless opts say otherwise.
func Dial(target string, opts ...grpc.DialOption) (*Client, error) {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{Conn: conn, API: bridgepb.NewBridgeClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.Close() }

// Claim says which call to take: CallID, or the next on Listener (any when both are empty).
type Claim struct {
	CallID   string
	Listener string
	Media    *bridgepb.MediaOptions
}

// ClaimError is a claim whose stream ended before a call started; Ended
// is set when the bridge said why.
type ClaimError struct {
	Msg   string
	Ended *bridgepb.CallEnded
}

func (e *ClaimError) Error() string { return e.Msg }

type pullLink struct {
	stream bridgepb.Bridge_ClaimCallClient
	cancel context.CancelFunc
}

func (l pullLink) send(c *bridgepb.CallCommand) error {
	return l.stream.Send(&bridgepb.ClaimCallRequest{Command: c})
}

func (l pullLink) recv() (*bridgepb.CallEvent, error) {
	r, err := l.stream.Recv()
	return r.GetEvent(), err
}

func (l pullLink) closeSend() {
	_ = l.stream.CloseSend()
	go func() { // let the bridge finish the stream, then release it
		time.Sleep(2 * time.Second)
		l.cancel()
	}()
}

// Claim opens a worker slot and blocks until a call arrives (or ctx is done).
func (c *Client) Claim(ctx context.Context, claim Claim) (*Call, error) {
	msg := &bridgepb.ClaimCall{Media: claim.Media}
	if claim.CallID != "" {
		msg.Target = &bridgepb.ClaimCall_CallId{CallId: claim.CallID}
	} else {
		msg.Target = &bridgepb.ClaimCall_Listener{Listener: claim.Listener}
	}
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel) // ctx ends the wait, not the call
	stream, err := c.API.ClaimCall(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	l := pullLink{stream, cancel}
	if err := l.send(&bridgepb.CallCommand{Command: &bridgepb.CallCommand_Claim{Claim: msg}}); err != nil {
		cancel()
		return nil, err
	}
	ev, err := l.recv()
	stop()
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &ClaimError{Msg: "claim failed: " + err.Error()}
	}
	if ended := ev.GetEnded(); ended != nil {
		cancel()
		return nil, &ClaimError{Msg: "the call ended before it started: " + ended.GetDetail(), Ended: ended}
	}
	started := ev.GetStarted()
	if started == nil {
		cancel()
		return nil, &ClaimError{Msg: fmt.Sprintf("expected CallStarted, got %T", ev.GetEvent())}
	}
	return newCall(started, l), nil
}

// Work runs workers claim loops until ctx is done: each claims a call, runs
// handler, and claims the next.
func (c *Client) Work(ctx context.Context, workers int, claim Claim, handler Handler) error {
	var wg sync.WaitGroup
	for i := 0; i < max(workers, 1); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				call, err := c.Claim(ctx, claim)
				if err != nil {
					var ce *ClaimError
					if errors.As(err, &ce) {
						log.Printf("audiosocket-bridge: %v", err)
					}
					select {
					case <-ctx.Done():
					case <-time.After(200 * time.Millisecond):
					}
					continue
				}
				handler(ctx, call)
				fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				call.finish(fctx)
				cancel()
			}
		}()
	}
	wg.Wait()
	return nil
}

// ListCalls lists the calls the bridge holds (on listener, or all).
func (c *Client) ListCalls(ctx context.Context, listener string) ([]*bridgepb.CallInfo, error) {
	r, err := c.API.ListCalls(ctx, &bridgepb.ListCallsRequest{Listener: listener})
	return r.GetCalls(), err
}

// HangupCall ends a call (reason HANGUP_REQUESTED); NOT_FOUND when unknown.
func (c *Client) HangupCall(ctx context.Context, callID string) error {
	_, err := c.API.HangupCall(ctx, &bridgepb.HangupCallRequest{CallId: callID})
	return err
}
