// gorelay: a plain Go AudioSocket-to-gRPC relay, push mode only, for the
// bridge benchmark (bench/bridge): what audiosocket-bridge does for a call,
// written the straightforward Go way (goroutines per call, a 20 ms ticker),
// to put the bridge's cost next to it. 8 kHz signed linear only; no pull
// mode, DTMF, dialects, resampling, watermarks or failover.
//
//	gorelay --listen=127.0.0.1:0 --backend=127.0.0.1:PORT
//
// stderr: {"event":"listening","audiosocket":"127.0.0.1:N",...}; on SIGINT
// or SIGTERM one JSON line of counters on stdout.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "AudioSocket address to listen on")
	target := flag.String("backend", "", "the CallHandler backend, host:port (gRPC target)")
	acceptTimeout := flag.Duration("accept_timeout", 5*time.Second, "how long to wait for the backend's accept")
	maxPlayout := flag.Duration("max_playout", 120*time.Second, "backend audio queued per call; more is dropped")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "--backend is required")
		os.Exit(2)
	}
	be, err := newBackend(*target)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "{\"event\":\"listening\",\"audiosocket\":%q,\"gomaxprocs\":%d,\"go\":%q}\n",
		ln.Addr().String(), runtime.GOMAXPROCS(0), runtime.Version())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		ln.Close()
		printStats()
		os.Exit(0)
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			select {} // closed by the signal handler, which exits
		}
		go handleConn(conn, be, *acceptTimeout, *maxPlayout)
	}
}

func printStats() {
	out := map[string]any{"event": "stopped"}
	for name, v := range map[string]interface{ Load() uint64 }{
		"calls": &stats.calls, "calls_failed": &stats.callsFailed, "frames_in": &stats.framesIn,
		"frames_out": &stats.framesOut, "dropped_in": &stats.droppedIn, "dropped_out_ms": &stats.droppedOutMs,
		"late_ticks": &stats.lateTicks, "skipped_frames": &stats.skippedFrames,
		"silence_frames": &stats.silenceFrames, "marks_played": &stats.marksPlayed,
		"marks_cleared": &stats.marksCleared, "marks_call_ended": &stats.marksCallEnded,
		"clears": &stats.clears, "unsupported_commands": &stats.unsupportedCommands,
	} {
		out[name] = v.Load()
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
