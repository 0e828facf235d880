package bridge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// Client talks to the bridge's gRPC port (pull mode and call inspection).
type Client struct {
	// Conn is the connection Claim, ListCalls and HangupCall use (round
	// robin over the target's addresses); Work opens one per address.
	Conn *grpc.ClientConn
	API  bridgepb.BridgeServiceClient

	cfg       *config
	endpoints []endpoint
}

// tokenCreds sends the bearer token on every RPC.
type tokenCreds struct{ token string }

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + t.token}, nil
}

// RequireTransportSecurity is false: the bridge accepts its token on a
// plaintext connection too (a trusted network); use WithTLS elsewhere.
func (tokenCreds) RequireTransportSecurity() bool { return false }

func (c *config) grpcDialOptions() []grpc.DialOption {
	var opts []grpc.DialOption
	if c.tls != nil {
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(c.tls)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if c.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds{c.token}))
	}
	return append(opts, c.dialOpts...)
}

// Dial connects to the bridge. target is "host:port" or "dns:///host:port"
// (a name whose every address is a bridge replica, e.g. a headless
// Service), or a comma-separated list of them; any other gRPC target
// ("ipv4:...", "unix:...") is used as it is. Without WithTLS the connection
// is plaintext. Options: WithToken, WithTLS, WithLogger, WithAudioBuffer,
// WithResolveInterval, WithLookup, WithBackoff, WithDialOptions.
func Dial(target string, opts ...Option) (*Client, error) {
	cfg := newConfig(opts)
	eps, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	dopts := cfg.grpcDialOptions()
	grpcTarget := target
	if len(eps) > 1 {
		r := manual.NewBuilderWithScheme("audiosocket-bridge")
		var addrs []resolver.Address
		for _, ep := range eps {
			addrs = append(addrs, resolver.Address{Addr: ep.hostPort})
		}
		r.InitialState(resolver.State{Addresses: addrs})
		dopts = append(dopts, grpc.WithResolvers(r),
			grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
		grpcTarget = r.Scheme() + ":///bridges"
	}
	conn, err := grpc.NewClient(grpcTarget, dopts...)
	if err != nil {
		return nil, err
	}
	return &Client{Conn: conn, API: bridgepb.NewBridgeServiceClient(conn), cfg: cfg, endpoints: eps}, nil
}

// endpoint is one entry of a target: a host:port to resolve, or a gRPC
// target used as it is.
type endpoint struct {
	hostPort string // resolve: host:port
	raw      string // otherwise: the gRPC target
}

func parseTarget(target string) ([]endpoint, error) {
	for _, scheme := range []string{"ipv4:", "ipv6:", "unix:", "unix-abstract:", "passthrough:", "vsock:", "xds:"} {
		if strings.HasPrefix(target, scheme) {
			return []endpoint{{raw: target}}, nil
		}
	}
	var eps []endpoint
	for _, part := range strings.Split(target, ",") {
		part = strings.TrimSpace(part)
		if rest, ok := strings.CutPrefix(part, "dns:"); ok {
			if rest, ok = strings.CutPrefix(rest, "//"); ok {
				_, rest, _ = strings.Cut(rest, "/") // skip the DNS server authority
			}
			part = rest
		}
		if part == "" {
			continue
		}
		if !strings.Contains(part, ":") {
			return nil, fmt.Errorf("bridge target %q: want host:port", part)
		}
		eps = append(eps, endpoint{hostPort: part})
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("bridge target %q: no address", target)
	}
	return eps, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.Close() }

// Claim says which call to take: CallID, or the next on Listener (any when both are empty).
type Claim struct {
	CallID   string
	Listener string
	Media    *bridgepb.MediaOptions
}

// ClaimError is a claim whose stream ended before a call started. Ended is
// set when the bridge said why (the call ended first); Err is the stream's
// error (a gRPC status: status.Code(err) sees through ClaimError).
type ClaimError struct {
	Msg   string
	Ended *bridgepb.CallEnded
	Err   error
}

func (e *ClaimError) Error() string { return e.Msg }
func (e *ClaimError) Unwrap() error { return e.Err }

type pullLink struct {
	stream bridgepb.BridgeService_ClaimCallClient
	cancel context.CancelFunc
}

func (l pullLink) send(c *bridgepb.CallCommand) error {
	return l.stream.Send(&bridgepb.ClaimCallRequest{Request: &bridgepb.ClaimCallRequest_Command{Command: c}})
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

// Claim opens a worker slot and blocks until a call arrives (or ctx is
// done). It claims through Conn; Work keeps claims on every address.
func (c *Client) Claim(ctx context.Context, claim Claim) (*Call, error) {
	return claimOn(ctx, c.API, claim, c.cfg)
}

func claimOn(ctx context.Context, api bridgepb.BridgeServiceClient, claim Claim, cfg *config) (*Call, error) {
	msg := &bridgepb.ClaimCall{Media: claim.Media}
	if claim.CallID != "" {
		msg.Target = &bridgepb.ClaimCall_CallId{CallId: claim.CallID}
	} else {
		msg.Target = &bridgepb.ClaimCall_Listener{Listener: claim.Listener}
	}
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel) // ctx ends the wait, not the call
	stream, err := api.ClaimCall(sctx)
	if err != nil {
		stop()
		cancel()
		return nil, &ClaimError{Msg: "claim failed: " + err.Error(), Err: err}
	}
	l := pullLink{stream, cancel}
	// A failed send shows as io.EOF; the stream's status comes from recv.
	_ = l.stream.Send(&bridgepb.ClaimCallRequest{Request: &bridgepb.ClaimCallRequest_Claim{Claim: msg}})
	ev, err := l.recv()
	stop()
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &ClaimError{Msg: "claim failed: " + err.Error(), Err: err}
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
	return newCall(started, l, cfg), nil
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
