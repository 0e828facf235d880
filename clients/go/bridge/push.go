package bridge

import (
	"context"
	"crypto/subtle"
	"net"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type handlerServer struct {
	bridgepb.UnimplementedCallHandlerServiceServer
	handler Handler
	cfg     *config
}

// NewHandlerServer is a CallHandlerService that accepts each call the
// bridge pushes and runs handler for it; register it on your own
// grpc.Server (TLS, interceptors, ...) with bridgepb.RegisterCallHandlerServiceServer,
// or use Listen or Serve. Options: WithMedia, WithDecide, WithToken,
// WithLogger, WithAudioBuffer.
func NewHandlerServer(handler Handler, opts ...Option) bridgepb.CallHandlerServiceServer {
	return &handlerServer{handler: handler, cfg: newConfig(opts)}
}

type pushLink struct {
	stream bridgepb.CallHandlerService_HandleCallServer
}

func (l pushLink) send(c *bridgepb.CallCommand) error {
	return l.stream.Send(&bridgepb.HandleCallResponse{Response: &bridgepb.HandleCallResponse_Command{Command: c}})
}

func (l pushLink) recv() (*bridgepb.CallEvent, error) {
	r, err := l.stream.Recv()
	return r.GetEvent(), err
}

func (pushLink) closeSend() {}

func (s *handlerServer) authorized(ctx context.Context) bool {
	if s.cfg.token == "" {
		return true
	}
	md, _ := metadata.FromIncomingContext(ctx)
	want := []byte("Bearer " + s.cfg.token)
	for _, v := range md.Get("authorization") {
		if subtle.ConstantTimeCompare([]byte(v), want) == 1 {
			return true
		}
	}
	return false
}

func (s *handlerServer) HandleCall(stream bridgepb.CallHandlerService_HandleCallServer) error {
	ctx := stream.Context()
	if !s.authorized(ctx) {
		s.cfg.logger.Warn("audiosocket-bridge: refused a push stream without the token")
		return status.Error(codes.Unauthenticated, "missing or wrong bearer token")
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	started := first.GetEvent().GetStarted()
	if started == nil {
		return status.Error(codes.InvalidArgument, "the first event must be CallStarted")
	}
	if s.cfg.decide != nil {
		if reject := s.cfg.decide(started); reject != nil {
			return stream.Send(&bridgepb.HandleCallResponse{Response: &bridgepb.HandleCallResponse_Reject{Reject: reject}})
		}
	}
	call := newCall(started, pushLink{stream}, s.cfg)
	// AcceptCall is not a CallCommand: it has its own command_id.
	m, err := call.exchange(ctx, func(id string) error {
		return stream.Send(&bridgepb.HandleCallResponse{Response: &bridgepb.HandleCallResponse_Accept{
			Accept: &bridgepb.AcceptCall{Media: s.cfg.media, CommandId: id}}})
	})
	m, err = checkedResult(m, err, bridgepb.CommandKind_COMMAND_KIND_ACCEPT)
	r, _ := m.(*bridgepb.CommandResult)
	if err != nil {
		s.cfg.logger.Warn("audiosocket-bridge: accept failed", "call_id", started.GetCallId(), "error", err)
		call.run(ctx, func(context.Context, *Call) {})
		return nil
	}
	// CallStarted precedes the accept: the accept's result has the rate.
	call.mu.Lock()
	call.rate = r.GetBackendSampleRateHz()
	call.mu.Unlock()
	call.run(ctx, s.handler)
	return nil
}

// Server is a running push-mode backend.
type Server struct {
	GRPC     *grpc.Server
	Listener net.Listener
}

// Addr is the address served, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.Listener.Addr().String() }

// Target is the value for the bridge's --backend flag.
func (s *Server) Target() string { return "ipv4:" + s.Addr() }

// Stop stops serving and ends the streams.
func (s *Server) Stop() { s.GRPC.Stop() }

func newServer(addr string, handler Handler, opts []Option) (*Server, error) {
	cfg := newConfig(opts)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	sopts := cfg.serverOpts
	if cfg.tls != nil {
		sopts = append([]grpc.ServerOption{grpc.Creds(credentials.NewTLS(cfg.tls))}, sopts...)
	}
	g := grpc.NewServer(sopts...)
	bridgepb.RegisterCallHandlerServiceServer(g, NewHandlerServer(handler, opts...))
	return &Server{GRPC: g, Listener: lis}, nil
}

// Listen starts a CallHandlerService server on addr (port 0 picks one) in the
// background. Options: those of NewHandlerServer, and WithTLS,
// WithServerOptions.
func Listen(addr string, handler Handler, opts ...Option) (*Server, error) {
	s, err := newServer(addr, handler, opts)
	if err != nil {
		return nil, err
	}
	go func() { _ = s.GRPC.Serve(s.Listener) }()
	return s, nil
}

// Serve serves handler on addr until ctx is done, then stops gracefully
// (active calls finish first) and returns nil. It returns the error that
// stops it early: the address cannot be listened on, or serving failed.
func Serve(ctx context.Context, addr string, handler Handler, opts ...Option) error {
	s, err := newServer(addr, handler, opts)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, s.GRPC.GracefulStop)
	defer stop()
	return s.GRPC.Serve(s.Listener)
}
