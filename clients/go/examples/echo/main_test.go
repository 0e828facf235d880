package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The example between the real bridge and audiosocket-call, in both modes
// and both dialects.

func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

func binPath(env, rel string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	return filepath.Join(root(), rel)
}

type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...)}
	out, _ := p.cmd.StdoutPipe()
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *proc) wait(t *testing.T, pattern string) []string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()
				return m
			}
		}
		p.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Fatalf("no line matching %q in:\n%s", pattern, strings.Join(p.lines, "\n"))
	return nil
}

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
	bridgeBin := binPath("BRIDGE_BIN", "bazel-bin/server/audiosocket-bridge")
	callBin := binPath("AUDIOSOCKET_CALL_BIN", "bazel-bin/tools/audiosocket-call/audiosocket-call")
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
				listen := "--listen=127.0.0.1:0"
				if dialect == "extended" {
					listen += ",dialect=extended"
				}
				common := []string{listen, "--grpc_listen=127.0.0.1:0", "--first_audio_wait=100ms", "--drain_timeout=200ms"}
				if help, _ := exec.Command(bridgeBin, "--helpfull").CombinedOutput(); strings.Contains(string(help), "--metrics_listen") {
					common = append(common, "--metrics_listen=") // its fixed default port would collide
				}
				var example, br *proc
				if mode == "push" {
					example = start(t, exe, "-push", "127.0.0.1:0", "-wav", wav)
					port := example.wait(t, `^listening 127\.0\.0\.1:(\d+)`)[1]
					br = start(t, bridgeBin, append(common, "--backend=ipv4:127.0.0.1:"+port)...)
				} else {
					br = start(t, bridgeBin, append(common, "--mode=pull")...)
				}
				l := br.wait(t, `"event":"listening".*"audiosocket":"127\.0\.0\.1:(\d+)".*"grpc_port":(\d+)`)
				if mode == "pull" {
					example = start(t, exe, "-pull", "127.0.0.1:"+l[2], "-wav", wav)
					example.wait(t, `^claiming`)
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
				example.wait(t, `dtmf digit=5 `)
				example.wait(t, `wav queued response=wav-1`)
				example.wait(t, `dtmf digit=# `)
				example.wait(t, `ended reason=CALL_END_REASON_BACKEND_HUNG_UP`)
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
