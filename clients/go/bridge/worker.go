package bridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Permanent reports whether err is one that retrying cannot fix: the bridge
// refused the token (UNAUTHENTICATED, PERMISSION_DENIED), is not a pull-mode
// bridge (FAILED_PRECONDITION: it runs in push mode; UNIMPLEMENTED: not a
// bridge), or refused the request (INVALID_ARGUMENT). Work returns these;
// it retries every other error.
func Permanent(err error) bool {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented,
		codes.FailedPrecondition, codes.InvalidArgument:
		return true
	}
	return false
}

// Work answers calls until ctx is done, then waits for the calls in
// progress and returns nil. It keeps perAddress claims open on every
// address of the target — each address of a DNS name (one per bridge
// replica, e.g. a headless Service) and each entry of a comma-separated
// list — and resolves the target again every 15 s (WithResolveInterval):
// new replicas get claims, claims on addresses that are gone are closed
// (their calls go on to the end). Each claim that gets a call runs handler
// with ctx and is replaced when the handler returns.
//
// Errors that retrying cannot fix (see Permanent, e.g. a missing token or a
// bridge in push mode) stop Work: it waits for the calls in progress and
// returns the error, naming the address. Other errors (the bridge
// unreachable or restarting) are retried with exponential backoff and
// jitter (WithBackoff), logged once when an address starts failing, at most
// once a minute while it fails, and once when it recovers.
func (c *Client) Work(ctx context.Context, perAddress int, claim Claim, handler Handler) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &worker{client: c, claim: claim, handler: handler, perAddress: max(perAddress, 1),
		callCtx: ctx, stopAll: cancel, addrs: map[string]*addrWorker{}, resolved: map[int][]dialSpec{}}
	for {
		w.reconcile(wctx)
		select {
		case <-wctx.Done():
		case <-time.After(c.cfg.resolveEvery):
			continue
		}
		break
	}
	for _, a := range w.addrs {
		a.cancel()
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

type dialSpec struct {
	addr      string // the key: "ip:port", or the raw target
	target    string
	authority string // the name for TLS, when dialled by address
}

type worker struct {
	client     *Client
	claim      Claim
	handler    Handler
	perAddress int
	callCtx    context.Context
	stopAll    context.CancelFunc
	wg         sync.WaitGroup
	addrs      map[string]*addrWorker
	resolved   map[int][]dialSpec // the last good answer per endpoint
	lookupFail map[string]bool    // endpoints whose lookup fails (logged once)

	mu  sync.Mutex
	err error
}

type addrWorker struct {
	spec    dialSpec
	api     bridgepb.BridgeServiceClient
	cancel  context.CancelFunc
	mu      sync.Mutex
	failing int
	lastLog time.Time
}

// resolve lists the addresses to claim on; an endpoint whose lookup fails
// keeps its previous addresses.
func (w *worker) resolve(ctx context.Context) []dialSpec {
	cfg := w.client.cfg
	if w.lookupFail == nil {
		w.lookupFail = map[string]bool{}
	}
	var out []dialSpec
	for i, ep := range w.client.endpoints {
		if ep.raw != "" {
			out = append(out, dialSpec{addr: ep.raw, target: ep.raw})
			continue
		}
		host, port, err := net.SplitHostPort(ep.hostPort)
		if err != nil {
			out = append(out, dialSpec{addr: ep.hostPort, target: ep.hostPort})
			continue
		}
		if net.ParseIP(host) != nil {
			out = append(out, dialSpec{addr: ep.hostPort, target: "passthrough:///" + ep.hostPort})
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ips, err := cfg.lookup(lctx, host)
		cancel()
		if err == nil && len(ips) == 0 {
			err = errors.New("no address")
		}
		if err != nil {
			if ctx.Err() == nil && !w.lookupFail[ep.hostPort] {
				cfg.logger.Warn("audiosocket-bridge: cannot resolve the bridge's name; keeping the addresses known",
					"target", ep.hostPort, "error", err, "addresses", len(w.resolved[i]))
			}
			w.lookupFail[ep.hostPort] = true
			out = append(out, w.resolved[i]...)
			continue
		}
		if w.lookupFail[ep.hostPort] {
			cfg.logger.Info("audiosocket-bridge: the bridge's name resolves again", "target", ep.hostPort)
			delete(w.lookupFail, ep.hostPort)
		}
		sort.Strings(ips)
		var specs []dialSpec
		for _, ip := range ips {
			hp := net.JoinHostPort(ip, port)
			specs = append(specs, dialSpec{addr: hp, target: "passthrough:///" + hp, authority: ep.hostPort})
		}
		w.resolved[i] = specs
		out = append(out, specs...)
	}
	return out
}

// reconcile starts claims on new addresses and stops those on addresses gone.
func (w *worker) reconcile(ctx context.Context) {
	specs := w.resolve(ctx)
	if ctx.Err() != nil {
		return
	}
	want := map[string]dialSpec{}
	for _, s := range specs {
		want[s.addr] = s
	}
	for addr, a := range w.addrs {
		if _, ok := want[addr]; !ok {
			w.client.cfg.logger.Info("audiosocket-bridge: bridge address gone, closing its idle claims", "address", addr)
			a.cancel()
			delete(w.addrs, addr)
		}
	}
	for addr, s := range want {
		if _, ok := w.addrs[addr]; ok {
			continue
		}
		if err := w.start(ctx, s); err != nil {
			w.fail(fmt.Errorf("bridge %s: %w", addr, err))
			return
		}
	}
}

func (w *worker) start(ctx context.Context, s dialSpec) error {
	opts := w.client.cfg.grpcDialOptions()
	if s.authority != "" {
		opts = append(opts, grpc.WithAuthority(s.authority))
	}
	conn, err := grpc.NewClient(s.target, opts...)
	if err != nil {
		return err
	}
	actx, cancel := context.WithCancel(ctx)
	a := &addrWorker{spec: s, api: bridgepb.NewBridgeServiceClient(conn), cancel: cancel}
	w.addrs[s.addr] = a
	var loops sync.WaitGroup
	for i := 0; i < w.perAddress; i++ {
		loops.Add(1)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer loops.Done()
			w.loop(actx, a)
		}()
	}
	go func() { loops.Wait(); conn.Close() }()
	return nil
}

func (w *worker) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.client.cfg.logger.Error("audiosocket-bridge: cannot work with this bridge, stopping", "error", err)
	w.stopAll()
}

// loop claims calls on one address and runs the handler for each.
func (w *worker) loop(ctx context.Context, a *addrWorker) {
	cfg := w.client.cfg
	attempt := 0
	for ctx.Err() == nil {
		call, err := claimOn(ctx, a.api, w.claim, cfg)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if Permanent(err) {
				w.fail(fmt.Errorf("bridge %s: %w", a.spec.addr, err))
				return
			}
			var ce *ClaimError
			if errors.As(err, &ce) && ce.Ended != nil {
				continue // the claimed call ended first: claim again
			}
			attempt++
			a.failed(cfg, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff(cfg, attempt)):
			}
			continue
		}
		attempt = 0
		a.recovered(cfg)
		call.run(w.callCtx, w.handler)
	}
}

func backoff(cfg *config, attempt int) time.Duration {
	d := cfg.backoffMin
	for i := 1; i < attempt && d < cfg.backoffMax; i++ {
		d *= 2
	}
	d = min(d, cfg.backoffMax)
	return d/2 + rand.N(d/2+1)
}

func (a *addrWorker) failed(cfg *config, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failing++
	if a.failing == 1 || time.Since(a.lastLog) >= time.Minute {
		cfg.logger.Warn("audiosocket-bridge: cannot claim calls, retrying", "address", a.spec.addr,
			"error", err, "failures", a.failing)
		a.lastLog = time.Now()
	}
}

func (a *addrWorker) recovered(cfg *config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failing > 0 {
		cfg.logger.Info("audiosocket-bridge: claiming calls again", "address", a.spec.addr, "failures", a.failing)
		a.failing = 0
	}
}
