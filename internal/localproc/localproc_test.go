package localproc

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A held lock refuses a second taker (naming the holder) until released;
// WaitLock waits for it and says so once.
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	first, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = TryLock(path)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second TryLock: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := WaitLock(ctx, path, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitLock on a held lock: %v", err)
	}

	waits := 0
	go func() {
		time.Sleep(150 * time.Millisecond)
		first.Unlock()
		first.Unlock() // twice is fine
	}()
	second, err := WaitLock(t.Context(), path, func(error) { waits++ })
	if err != nil || waits != 1 {
		t.Fatalf("WaitLock: %v, onWait called %d times", err, waits)
	}
	second.Unlock()
	var none *Lock
	none.Unlock()
}

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if PortAccepts(port, time.Second) {
		t.Fatalf("port %d accepts before anyone listens", port)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !PortAccepts(port, time.Second) {
		t.Fatalf("port %d does not accept while listening", port)
	}

	// Below the ephemeral range, and never the same port twice.
	low := ephemeralLow()
	seen := map[int]bool{port: true}
	for range 200 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p >= low || p < 10000 {
			t.Fatalf("port %d outside [10000, %d)", p, low)
		}
		if seen[p] {
			t.Fatalf("port %d answered twice", p)
		}
		seen[p] = true
	}
}

// Stop ends a child with SIGTERM, or with SIGKILL after the grace period
// when it ignores SIGTERM; either way the process is gone and reaped.
func TestChildStop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		argv   []string
		killed bool
	}{
		{"term", []string{"sleep", "60"}, false},
		{"ignores-term", []string{"/bin/sh", "-c", "trap '' TERM; echo ready; sleep 60 & wait"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := NewTailBuffer(64)
			cmd := exec.Command(tc.argv[0], tc.argv[1:]...)
			cmd.Stdout = out
			c, err := Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if !Alive(c.Pid()) || c.Err() != nil {
				t.Fatal("child not running")
			}
			// Start returns once exec has begun; the kernel fills in the new
			// image's command line a moment later, so wait for it.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
				args, ok := Args(c.Pid())
				if ok && strings.Join(args, " ") == strings.Join(tc.argv, " ") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Args = %q, %v", args, ok)
				}
			}
			if tc.killed { // wait until the trap is set
				for deadline := time.Now().Add(5 * time.Second); out.String() != "ready"; time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("child never became ready")
					}
				}
			}
			killed, err := c.Stop(200 * time.Millisecond)
			if err != nil || killed != tc.killed {
				t.Fatalf("Stop = %v, %v; want killed=%v", killed, err, tc.killed)
			}
			select {
			case <-c.Exited():
			default:
				t.Fatal("Exited not closed after Stop")
			}
			if c.Err() == nil || Alive(c.Pid()) {
				t.Fatalf("after Stop: Err = %v, alive = %v", c.Err(), Alive(c.Pid()))
			}
			if killed, err := c.Stop(time.Second); killed || err != nil {
				t.Fatalf("second Stop = %v, %v", killed, err)
			}
		})
	}
}

// A cancelled Command kills its whole process group, not just the leader.
func TestCommandCancelKillsGroup(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cmd := Command(ctx, "/bin/sh", "-c", "sleep 60 & echo $!; wait")
	out := NewTailBuffer(64)
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var grandchild int
	for deadline := time.Now().Add(5 * time.Second); grandchild == 0; time.Sleep(10 * time.Millisecond) {
		grandchild, _ = strconv.Atoi(out.String())
		if time.Now().After(deadline) {
			t.Fatal("no pid printed")
		}
	}
	cancel()
	_ = cmd.Wait()
	for deadline := time.Now().Add(5 * time.Second); Alive(grandchild); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d survived the cancellation", grandchild)
		}
	}
}

func TestTailBufferAndReadTail(t *testing.T) {
	b := NewTailBuffer(5)
	_, _ = b.Write([]byte("abc"))
	_, _ = b.Write([]byte("defg\n"))
	if got := b.String(); got != "defg" {
		t.Fatalf("TailBuffer = %q", got)
	}
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ReadTail(path, 4); got != "789" {
		t.Fatalf("ReadTail = %q", got)
	}
	if got := ReadTail(filepath.Join(t.TempDir(), "none"), 4); got != "" {
		t.Fatalf("ReadTail of a missing file = %q", got)
	}
}

func TestEnvWithout(t *testing.T) {
	t.Setenv("LOCALPROC_A", "1")
	t.Setenv("LOCALPROC_AB", "2")
	env := EnvWithout([]string{"LOCALPROC_A="}, "X=1")
	joined := "\n" + strings.Join(env, "\n") + "\n"
	if strings.Contains(joined, "\nLOCALPROC_A=") || !strings.Contains(joined, "\nLOCALPROC_AB=2\n") || env[len(env)-1] != "X=1" {
		t.Fatalf("EnvWithout: %q", env)
	}
}

func TestIsExecutable(t *testing.T) {
	dir := t.TempDir()
	exe, plain := filepath.Join(dir, "exe"), filepath.Join(dir, "plain")
	_ = os.WriteFile(exe, nil, 0o755)
	_ = os.WriteFile(plain, nil, 0o644)
	if !IsExecutable(exe) || IsExecutable(plain) || IsExecutable(dir) || IsExecutable(filepath.Join(dir, "none")) {
		t.Fatal("IsExecutable misjudged")
	}
}

func TestBackoff(t *testing.T) {
	if Backoff(time.Second, 3*time.Second) != 2*time.Second || Backoff(2*time.Second, 3*time.Second) != 3*time.Second {
		t.Fatal("Backoff")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled ctx: %v", err)
	}
}
