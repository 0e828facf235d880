package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/audiosocket-bridge/audiosocket-bridge/clients/go/internal/testenv"
)

// The README's quick start, as written: the README holds this directory's
// main.go verbatim, and it is built the way the README says (a module of
// its own using the SDK from the checkout through a go.work).

func TestReadmeHoldsTheQuickStart(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.Root(), "clients/go/README.md"))
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
	sdk, _ := filepath.Abs(filepath.Join(testenv.Root(), "clients/go"))
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

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestQuickStart(t *testing.T) {
	bridgeBin, callBin := testenv.BridgeBin(), testenv.CallBin()
	agent := build(t)
	for _, mode := range []string{"push", "pull"} {
		t.Run(mode, func(t *testing.T) {
			var br, qs *testenv.Proc
			if mode == "push" {
				addr := freeAddr(t)
				qs = testenv.Start(t, agent, "push", addr)
				time.Sleep(500 * time.Millisecond)
				br = testenv.Start(t, bridgeBin, testenv.BridgeArgs("127.0.0.1:0", "--backend=ipv4:"+addr)...)
			} else {
				br = testenv.Start(t, bridgeBin, testenv.BridgeArgs("127.0.0.1:0", "--mode=pull")...)
			}
			l := br.Wait(t, `"event":"listening".*"audiosocket":"127\.0\.0\.1:(\d+)".*"grpc_port":(\d+)`)
			if mode == "pull" {
				qs = testenv.Start(t, agent, "pull", "127.0.0.1:"+l[2])
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
			qs.Wait(t, `ended: CALL_END_REASON_BACKEND_HUNG_UP`)
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
		br := testenv.Start(t, bridgeBin, testenv.BridgeArgs("127.0.0.1:0", "--backend=ipv4:127.0.0.1:1")...)
		l := br.Wait(t, `"event":"listening".*"grpc_port":(\d+)`)
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
