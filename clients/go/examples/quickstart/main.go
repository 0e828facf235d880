// The quick start: echoes the caller; on '#' waits until the caller has
// heard the echo so far, then hangs up.
//
//	go run . push 127.0.0.1:50061   # the bridge runs with --backend=ipv4:127.0.0.1:50061
//	go run . pull 127.0.0.1:50051   # the bridge runs in pull mode (no --backend)
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridge"
	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
)

func handle(ctx context.Context, call *bridge.Call) { // call.CallID(), call.SampleRate(), ...
	for ev := range call.Events() { // closes after *bridgepb.CallEnded
		switch e := ev.(type) {
		case *bridgepb.AudioChunk:
			call.Play(ctx, e.GetPcm(), "echo") // once the call ended: an error, errors.Is(err, bridge.ErrCallEnded)
		case *bridgepb.DtmfEvent:
			if e.GetDigit() == "#" {
				call.Mark(ctx, "bye") // blocks until the caller heard everything queued so far
				call.Hangup(ctx, false)
			}
		case *bridgepb.CallEnded:
			log.Printf("call %s ended: %s", call.CallID(), e.GetReason())
		}
	}
}

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: quickstart push|pull HOST:PORT")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if os.Args[1] == "push" {
		err = bridge.Serve(ctx, os.Args[2], handle) // bridge.WithToken(...), bridge.WithTLS(...)
	} else {
		var client *bridge.Client
		if client, err = bridge.Dial(os.Args[2]); err == nil { // the same options
			err = client.Work(ctx, 4, bridge.Claim{}, handle) // 4 calls at once per bridge replica
		}
	}
	if err != nil {
		log.Fatal(err)
	}
}
