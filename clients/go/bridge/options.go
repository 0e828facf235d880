package bridge

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
	"google.golang.org/grpc"
)

// Option configures Dial (pull mode) and Listen, Serve and NewHandlerServer
// (push mode). Each option says where it applies; elsewhere it is ignored.
type Option func(*config)

type config struct {
	logger       *slog.Logger
	token        string
	tls          *tls.Config
	media        *bridgepb.MediaOptions
	decide       func(*bridgepb.CallStarted) *bridgepb.RejectCall
	audioBuffer  time.Duration
	resolveEvery time.Duration
	lookup       func(ctx context.Context, host string) ([]string, error)
	backoffMin   time.Duration
	backoffMax   time.Duration
	dialOpts     []grpc.DialOption
	serverOpts   []grpc.ServerOption
}

func newConfig(opts []Option) *config {
	c := &config{
		logger:       slog.Default(),
		audioBuffer:  time.Second,
		resolveEvery: 15 * time.Second,
		lookup:       net.DefaultResolver.LookupHost,
		backoffMin:   250 * time.Millisecond,
		backoffMax:   15 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithLogger sets where the SDK logs (worker errors and recoveries, failed
// accepts, handler panics); the default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithToken sets the bridge's bearer token (its --auth_token_file). Pull:
// sent as "authorization: Bearer <token>" on every RPC. Push: every stream
// the bridge opens must carry it, others are refused with UNAUTHENTICATED.
// The token is sent with or without TLS: use WithTLS unless the network is
// trusted.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithTLS turns on TLS. Pull: the client side of the bridge's
// --tls_cert_file (set RootCAs for a private CA, Certificates for mutual
// TLS). Push: the server side the bridge verifies with --backend_tls_ca_file
// (set Certificates; ClientCAs and ClientAuth to require the bridge's
// --backend_tls_cert_file).
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithMedia sets the MediaOptions sent in AcceptCall (push).
func WithMedia(m *bridgepb.MediaOptions) Option { return func(c *config) { c.media = m } }

// WithDecide lets decide refuse calls (push): return nil to accept, or a RejectCall.
func WithDecide(decide func(*bridgepb.CallStarted) *bridgepb.RejectCall) Option {
	return func(c *config) { c.decide = decide }
}

// WithAudioBuffer bounds the caller audio a Call keeps for a slow reader of
// Events (default 1 s, like the bridge's --backend_queue_ms): beyond it the
// oldest AudioChunk is dropped and counted (Call.DroppedAudio); other events
// are never dropped.
func WithAudioBuffer(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.audioBuffer = d
		}
	}
}

// WithResolveInterval sets how often Client.Work resolves the target again
// to follow bridge replicas coming and going (default 15 s).
func WithResolveInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.resolveEvery = d
		}
	}
}

// WithLookup replaces the DNS lookup Client.Work uses to find every address
// of a host name (default net.DefaultResolver.LookupHost).
func WithLookup(lookup func(ctx context.Context, host string) ([]string, error)) Option {
	return func(c *config) {
		if lookup != nil {
			c.lookup = lookup
		}
	}
}

// WithBackoff sets Client.Work's retry delays after transient errors: the
// first retry waits about min, each further one twice as long up to max
// (defaults 250 ms and 15 s; each delay is randomised by up to half).
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) {
		if min > 0 && max >= min {
			c.backoffMin, c.backoffMax = min, max
		}
	}
}

// WithDialOptions adds grpc.DialOptions to every connection Dial and
// Client.Work open (after the SDK's own transport and token options).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, opts...) }
}

// WithServerOptions adds grpc.ServerOptions to the server Listen and Serve
// create (interceptors, keepalive, ...).
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(c *config) { c.serverOpts = append(c.serverOpts, opts...) }
}
