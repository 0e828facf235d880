package bridge

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServerOption configures a push-mode server.
type ServerOption func(*handlerServer)

// WithMedia sets the MediaOptions sent in AcceptCall.
func WithMedia(m *bridgepb.MediaOptions) ServerOption {
	return func(s *handlerServer) { s.media = m }
}

// WithDecide lets decide refuse calls: return nil to accept, or a RejectCall.
func WithDecide(decide func(*bridgepb.CallStarted) *bridgepb.RejectCall) ServerOption {
	return func(s *handlerServer) { s.decide = decide }
}

type handlerServer struct {
	bridgepb.UnimplementedCallHandlerServer
	handler Handler
	media   *bridgepb.MediaOptions
	decide  func(*bridgepb.CallStarted) *bridgepb.RejectCall
}

// NewHandlerServer is a CallHandler service that accepts each call the
// bridge pushes and runs handler for it; register it on your grpc.Server
// with bridgepb.RegisterCallHandlerServer, or use Serve.
func NewHandlerServer(handler Handler, opts ...ServerOption) bridgepb.CallHandlerServer {
	s := &handlerServer{handler: handler}
	for _, o := range opts {
		o(s)
	}
	return s
}

type pushLink struct {
	stream bridgepb.CallHandler_HandleCallServer
}

func (l pushLink) send(c *bridgepb.CallCommand) error {
	return l.stream.Send(&bridgepb.HandleCallResponse{Command: c})
}

func (l pushLink) recv() (*bridgepb.CallEvent, error) {
	r, err := l.stream.Recv()
	return r.GetEvent(), err
}

func (pushLink) closeSend() {}

func (s *handlerServer) HandleCall(stream bridgepb.CallHandler_HandleCallServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	started := first.GetEvent().GetStarted()
	if started == nil {
		return status.Error(codes.InvalidArgument, "the first event must be CallStarted")
	}
	if s.decide != nil {
		if reject := s.decide(started); reject != nil {
			return stream.Send(&bridgepb.HandleCallResponse{Command: &bridgepb.CallCommand{
				Command: &bridgepb.CallCommand_Reject{Reject: reject}}})
		}
	}
	ctx := stream.Context()
	call := newCall(started, pushLink{stream})
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		call.finish(fctx)
	}()
	if _, err := call.checked(ctx, &bridgepb.CallCommand{Command: &bridgepb.CallCommand_Accept{
		Accept: &bridgepb.AcceptCall{Media: s.media}}}, "accept"); err != nil {
		return nil
	}
	s.handler(ctx, call)
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

// Listen starts a CallHandler server on addr (port 0 picks one) in the background.
func Listen(addr string, handler Handler, opts ...ServerOption) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	g := grpc.NewServer()
	bridgepb.RegisterCallHandlerServer(g, NewHandlerServer(handler, opts...))
	go func() { _ = g.Serve(lis) }()
	return &Server{GRPC: g, Listener: lis}, nil
}

// Serve serves handler on addr until ctx is done.
func Serve(ctx context.Context, addr string, handler Handler, opts ...ServerOption) error {
	s, err := Listen(addr, handler, opts...)
	if err != nil {
		return err
	}
	<-ctx.Done()
	s.GRPC.GracefulStop()
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return ctx.Err()
}
