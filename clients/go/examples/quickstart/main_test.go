package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
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

// The README's quick start, as written: the README holds this directory's
// main.go verbatim, and it is built the way the README says (a module of
// its own using the SDK from the checkout through a go.work).

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

func TestReadmeHoldsTheQuickStart(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root(), "clients/go/README.md"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, append(append([]byte("```go\n"), src...), "```\n"...)) {
		t.Error("clients/go/README.md does not hold examples/quickstart/main.go verbatim in a ```go block")
	}
}

// build follows the README: go mod init, go work init with the checkout, go build.
func build(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, _ := os.ReadFile("main.go")
	if err := os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	sdk, _ := filepath.Abs(filepath.Join(root(), "clients/go"))
	for _, args := range [][]string{{"mod", "init", "example.com/agent"}, {"work", "init", ".", sdk}, {"build", "-o", "agent", "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return filepath.Join(dir, "agent")
}

type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	out, _ := p.cmd.StdoutPipe()
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	})
	return p
}

func (p *proc) wait(t *testing.T, pattern string) []string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		p.mu.Lock()
		for _, l := range p.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()
				return m
			}
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Fatalf("no line matching %q in:\n%s", pattern, strings.Join(p.lines, "\n"))
	return nil
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestQuickStart(t *testing.T) {
	bridgeBin := binPath("BRIDGE_BIN", "bazel-bin/server/audiosocket-bridge")
	callBin := binPath("AUDIOSOCKET_CALL_BIN", "bazel-bin/tools/audiosocket-call/audiosocket-call")
	agent := build(t)
	common := []string{"--listen=127.0.0.1:0", "--grpc_listen=127.0.0.1:0", "--first_audio_wait=100ms", "--drain_timeout=200ms"}
	if help, _ := exec.Command(bridgeBin, "--helpfull").CombinedOutput(); strings.Contains(string(help), "--metrics_listen") {
		common = append(common, "--metrics_listen=")
	}
	for _, mode := range []string{"push", "pull"} {
		t.Run(mode, func(t *testing.T) {
			var br, qs *proc
			if mode == "push" {
				addr := freeAddr(t)
				qs = start(t, agent, "push", addr)
				time.Sleep(500 * time.Millisecond)
				br = start(t, bridgeBin, append(common, "--backend=ipv4:"+addr)...)
			} else {
				br = start(t, bridgeBin, append(common, "--mode=pull")...)
			}
			l := br.wait(t, `"event":"listening".*"audiosocket":"127\.0\.0\.1:(\d+)".*"grpc_port":(\d+)`)
			if mode == "pull" {
				qs = start(t, agent, "pull", "127.0.0.1:"+l[2])
				time.Sleep(time.Second)
			}
			out, _ := exec.Command(callBin, "--target=127.0.0.1:"+l[1], "--source=tone:440",
				"--dtmf=#@4s", "--end=wait", "--duration=20s").Output()
			var summary struct {
				OK    int    `json:"ok"`
				Ended string `json:"ended"`
				RTT   *struct {
					Count int `json:"count"`
				} `json:"rtt_ms"`
			}
			if err := json.Unmarshal(bytes.TrimSpace(out), &summary); err != nil {
				t.Fatalf("summary %q: %v", out, err)
			}
			if summary.Ended != "remote_hangup" || summary.OK != 1 || summary.RTT == nil || summary.RTT.Count < 20 {
				t.Errorf("the quick start should echo, then hang up on '#': %s", out)
			}
			qs.wait(t, `ended: CALL_END_REASON_BACKEND_HUNG_UP`)
		})
	}
	// An address it cannot listen on is an error, not a silent exit 0.
	t.Run("port_taken", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out, err := exec.Command(agent, "push", l.Addr().String()).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), "address already in use") {
			t.Errorf("exit %v, output %q", err, out)
		}
	})
	// A push-mode bridge is a clear error for a pull worker.
	t.Run("pull_from_a_push_bridge", func(t *testing.T) {
		br := start(t, bridgeBin, append(common, "--backend=ipv4:127.0.0.1:1")...)
		l := br.wait(t, `"event":"listening".*"grpc_port":(\d+)`)
		cmd := exec.Command(agent, "pull", "127.0.0.1:"+l[1])
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(out.String(), "push mode") {
				t.Errorf("exit %v, output %q", err, out.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("the worker kept running against a push-mode bridge: %s", out.String())
		}
	})
}
