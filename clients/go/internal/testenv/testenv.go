// Package testenv is what the SDK's tests and the examples' tests share: the
// repository's bridge and audiosocket-call binaries, the bridge's flags for a
// test on loopback, and child processes whose output a test waits on.
package testenv

import (
	"bufio"
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

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

// binPath is $env when set, otherwise rel below the repository's root.
func binPath(env, rel string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	return filepath.Join(Root(), rel)
}

// BridgeBin is the bridge to test against ($BRIDGE_BIN, or Bazel's output).
func BridgeBin() string {
	return binPath("BRIDGE_BIN", "bazel-bin/server/audiosocket-bridge")
}

// CallBin is audiosocket-call ($AUDIOSOCKET_CALL_BIN, or Bazel's output).
func CallBin() string {
	return binPath("AUDIOSOCKET_CALL_BIN", "bazel-bin/tools/audiosocket-call/audiosocket-call")
}

// optionalFlags are flags newer bridges have: the metrics endpoint is turned
// off (its fixed default port would collide between bridges side by side).
var optionalFlags = sync.OnceValue(func() []string {
	out, _ := exec.Command(BridgeBin(), "--helpfull").CombinedOutput()
	if strings.Contains(string(out), "--metrics_listen") {
		return []string{"--metrics_listen="}
	}
	return nil
})

// BridgeArgs are the bridge's arguments for a test: AudioSocket on listen,
// gRPC on an ephemeral loopback port, short first-audio and drain waits, then
// flags (a later flag overrides an earlier one).
func BridgeArgs(listen string, flags ...string) []string {
	args := []string{"--listen=" + listen, "--grpc_listen=127.0.0.1:0", "--first_audio_wait=100ms", "--drain_timeout=200ms"}
	return append(append(args, optionalFlags()...), flags...)
}

// Proc is a child process whose stdout and stderr lines are kept.
type Proc struct {
	Cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

// Start runs name with args until the test ends (then interrupts it, and
// kills it when it has not exited 10 s later).
func Start(t *testing.T, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Cmd: exec.Command(name, args...), done: make(chan struct{})}
	out, err := p.Cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.Cmd.Stderr = p.Cmd.Stdout
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		_ = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.Cmd.Process.Kill()
		}
	})
	return p
}

// Wait returns the submatches of the first line matching pattern, failing
// the test with the output so far when none does within 20 s.
func (p *Proc) Wait(t *testing.T, pattern string) []string {
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
	t.Fatalf("no line matching %q in:\n%s", pattern, p.Output())
	return nil
}

// Output is the lines so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}
