package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/internal/testenv"
)

// The example between the real bridge and audiosocket-call, in both modes
// and both dialects.

func writeWAV(t *testing.T, path string) []byte {
	pcm := make([]byte, 8000)
	for i := 0; i < 4000; i++ {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16((i*37)%20000-10000)))
	}
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(36 + len(pcm)))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1))
	le(uint16(1))
	le(uint32(8000))
	le(uint32(16000))
	le(uint16(2))
	le(uint16(16))
	b.WriteString("data")
	le(uint32(len(pcm)))
	b.Write(pcm)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return pcm
}

func TestExampleBackend(t *testing.T) {
	bridgeBin, callBin := testenv.BridgeBin(), testenv.CallBin()
	exe := filepath.Join(t.TempDir(), "echo")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, mode := range []string{"push", "pull"} {
		for _, dialect := range []string{"asterisk", "extended"} {
			t.Run(mode+"_"+dialect, func(t *testing.T) {
				dir := t.TempDir()
				wav := filepath.Join(dir, "prompt.wav")
				prompt := writeWAV(t, wav)
				listen := "127.0.0.1:0"
				if dialect == "extended" {
					listen += ",dialect=extended"
				}
				var example, br *testenv.Proc
				if mode == "push" {
					example = testenv.Start(t, exe, "-push", "127.0.0.1:0", "-wav", wav)
					port := example.Wait(t, `^listening 127\.0\.0\.1:(\d+)`)[1]
					br = testenv.Start(t, bridgeBin, testenv.BridgeArgs(listen, "--backend=ipv4:127.0.0.1:"+port)...)
				} else {
					br = testenv.Start(t, bridgeBin, testenv.BridgeArgs(listen, "--mode=pull")...)
				}
				l := br.Wait(t, `"event":"listening".*"audiosocket":"127\.0\.0\.1:(\d+)".*"grpc_port":(\d+)`)
				if mode == "pull" {
					example = testenv.Start(t, exe, "-pull", "127.0.0.1:"+l[2], "-wav", wav)
					example.Wait(t, `^claiming`)
					time.Sleep(300 * time.Millisecond) // let the claims reach the bridge
				}
				record := filepath.Join(dir, "heard.wav")
				out, err := exec.Command(callBin, "--target=127.0.0.1:"+l[1], "--dialect="+dialect, "--source=tone:440",
					"--dtmf=5@400ms,#@2500ms", "--end=wait", "--duration=20s", "--record="+record).Output()
				if err != nil {
					t.Logf("audiosocket-call: %v", err)
				}
				var summary struct {
					OK           int    `json:"ok"`
					Ended        string `json:"ended"`
					RTTAmbiguous int    `json:"rtt_ambiguous"`
					RTT          *struct {
						Count int `json:"count"`
					} `json:"rtt_ms"`
				}
				if err := json.Unmarshal(bytes.TrimSpace(out), &summary); err != nil {
					t.Fatalf("summary %q: %v", out, err)
				}
				if summary.Ended != "remote_hangup" || summary.OK != 1 {
					t.Errorf("'#' should hang up: %s", out)
				}
				if summary.RTT == nil || summary.RTT.Count < 20 || summary.RTTAmbiguous != 0 {
					t.Errorf("echoed frames should come back byte-exact: %s", out)
				}
				example.Wait(t, `dtmf digit=5 `)
				example.Wait(t, `wav queued response=wav-1`)
				example.Wait(t, `dtmf digit=# `)
				example.Wait(t, `ended reason=CALL_END_REASON_BACKEND_HUNG_UP`)
				heard, err := os.ReadFile(record)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(heard, prompt) {
					t.Error(fmt.Sprintf("the WAV did not reach the caller byte-exact (%d bytes heard)", len(heard)))
				}
			})
		}
	}
}
