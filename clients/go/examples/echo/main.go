// Command echo is an example backend: it echoes the caller's audio, logs
// DTMF, plays a WAV when a digit is pressed, and hangs up on '#'.
//
//	go run ./examples/echo -push 127.0.0.1:50061   # bridge --backend=ipv4:127.0.0.1:50061
//	go run ./examples/echo -pull 127.0.0.1:50051   # bridge --mode=pull
//
// -wav FILE picks the sound (16-bit mono PCM WAV); without it a beep is
// generated. One log line per event on stdout.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/signal"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridge"
	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/bridgepb"
)

func main() {
	push := flag.String("push", "", "serve CallHandlerService on HOST:PORT (port 0: any)")
	pull := flag.String("pull", "", "claim calls from the bridge's gRPC HOST:PORT")
	wavPath := flag.String("wav", "", "16-bit mono WAV to play on a digit (default: a generated beep)")
	workers := flag.Int("workers", 4, "pull mode: concurrent calls per bridge address")
	flag.Parse()
	log.SetOutput(os.Stdout)
	log.SetFlags(0)

	wav, rate := beep(8000)
	if *wavPath != "" {
		var err error
		if wav, rate, err = readWAV(*wavPath); err != nil {
			log.Fatal(err)
		}
	}
	handler := func(ctx context.Context, call *bridge.Call) { handle(ctx, call, wav, rate) }

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch {
	case *push != "":
		srv, err := bridge.Listen(*push, handler)
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("listening %s (bridge flag: --backend=%s)", srv.Addr(), srv.Target())
		<-ctx.Done()
		srv.Stop()
	case *pull != "":
		client, err := bridge.Dial(*pull)
		if err != nil {
			log.Fatal(err)
		}
		defer client.Close()
		log.Printf("claiming calls from %s", *pull)
		if err := client.Work(ctx, *workers, bridge.Claim{}, handler); err != nil {
			log.Fatal(err)
		}
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func handle(ctx context.Context, call *bridge.Call, wav []byte, rate uint32) {
	id := call.CallID()
	log.Printf("call %s started listener=%s dialect=%s rate=%d", id, call.Listener(), call.Dialect(), call.SampleRate())
	played := 0
	for ev := range call.Events() {
		switch e := ev.(type) {
		case *bridgepb.AudioChunk:
			if _, err := call.Play(ctx, e.GetPcm(), "echo"); err != nil && bridge.Code(err) != bridgepb.ResultCode_RESULT_CODE_CALL_ENDED {
				log.Printf("call %s echo: %v", id, err)
			}
		case *bridgepb.DtmfEvent:
			if e.GetPhase() == bridgepb.DtmfPhase_DTMF_PHASE_BEGIN {
				continue // log each digit once, at its end
			}
			log.Printf("call %s dtmf digit=%s phase=%s", id, e.GetDigit(), e.GetPhase())
			if e.GetDigit() == "#" {
				if _, err := call.Hangup(ctx, false); err != nil {
					log.Printf("call %s hangup: %v", id, err)
				}
				log.Printf("call %s hangup sent", id)
				continue
			}
			played++
			response := fmt.Sprintf("wav-%d", played)
			var err error
			if rate == call.SampleRate() {
				_, err = call.Play(ctx, wav, response)
			} else {
				_, err = call.PlayAt(ctx, wav, rate, response)
			}
			if err != nil {
				log.Printf("call %s wav refused: %v", id, err)
			} else {
				log.Printf("call %s wav queued response=%s bytes=%d", id, response, len(wav))
			}
		case *bridgepb.CallEnded:
			log.Printf("call %s ended reason=%s", id, e.GetReason())
		}
	}
}

// beep is 0.5 s of 880 Hz, 16-bit mono at rate.
func beep(rate uint32) ([]byte, uint32) {
	n := int(rate) / 2
	pcm := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		v := int16(8000 * math.Sin(2*math.Pi*880*float64(i)/float64(rate)))
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	return pcm, rate
}

// readWAV reads a 16-bit mono PCM WAV: its samples and rate.
func readWAV(path string) ([]byte, uint32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New(path + ": not a WAV file")
	}
	var rate uint32
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:]))
		body := b[off+8 : min(off+8+size, len(b))]
		switch id {
		case "fmt ":
			if len(body) < 16 || binary.LittleEndian.Uint16(body[0:]) != 1 || binary.LittleEndian.Uint16(body[2:]) != 1 || binary.LittleEndian.Uint16(body[14:]) != 16 {
				return nil, 0, errors.New(path + ": need 16-bit mono PCM")
			}
			rate = binary.LittleEndian.Uint32(body[4:])
		case "data":
			if rate == 0 {
				return nil, 0, errors.New(path + ": data before fmt")
			}
			return body[:len(body)&^1], rate, nil
		}
		off += 8 + size + size%2
	}
	return nil, 0, errors.New(path + ": no data chunk")
}
