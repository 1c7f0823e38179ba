package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/api/enums/v1"
)

// TemporalOptions configures StartTemporal.
type TemporalOptions struct {
	// CLIPath is the Temporal CLI; "" = TemporalCLIPath(DefaultCacheDir()).
	// StartTemporal does not build it: call EnsureTemporalCLI first.
	CLIPath string
	// DBFile is the SQLite file kept across runs; "" = in-memory.
	DBFile string
	// Port is the frontend gRPC port on 127.0.0.1; 0 = a free port.
	Port int
	// UIPort is the Web UI port; 0 = a free port; -1 = headless (no UI).
	UIPort int
	// Namespace is registered at start ("default" always exists).
	Namespace string
	// SearchAttributes maps name -> type (Keyword, Text, Int, Double, Bool,
	// Datetime, KeywordList), registered in Namespace (and "default").
	SearchAttributes map[string]string
	// LogFile receives the server's stdout and stderr (appended); "" = discard.
	// The last 16 KiB are quoted in start errors either way.
	LogFile string
	// StartTimeout bounds the wait for readiness. Default 60s.
	StartTimeout time.Duration
	// StopTimeout is the grace period between SIGTERM and SIGKILL. Default 10s.
	StopTimeout time.Duration
	Logger      *slog.Logger
}

// Temporal is a running Temporal dev server started by StartTemporal.
type Temporal struct {
	address, uiURL, namespace string
	stopTimeout               time.Duration
	logger                    *slog.Logger
	cmd                       *exec.Cmd
	tail                      *tailBuffer
	logFile                   *os.File
	lock                      *fileLock
	exited                    chan struct{}
	waitErr                   error

	stopOnce sync.Once
	stopErr  error
}

// StartTemporal runs `temporal server start-dev` and returns once the
// frontend passes a health check and the namespace and search attributes are
// registered. On failure the process is stopped and the error quotes the
// tail of its output.
func StartTemporal(ctx context.Context, o TemporalOptions) (*Temporal, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CLIPath == "" {
		o.CLIPath = TemporalCLIPath("")
	}
	if !isExecutable(o.CLIPath) {
		return nil, fmt.Errorf("no Temporal CLI at %q (build it with EnsureTemporalCLI)", o.CLIPath)
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	saTypes, err := parseSearchAttributes(o.SearchAttributes)
	if err != nil {
		return nil, err
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	var lock *fileLock
	if o.DBFile != "" {
		if o.DBFile, err = filepath.Abs(o.DBFile); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(o.DBFile), 0o700); err != nil {
			return nil, err
		}
		if lock, err = tryLock(o.DBFile + ".lock"); err != nil {
			if errors.Is(err, errLocked) {
				return nil, fmt.Errorf("temporal database %s is in use by another process: %w", o.DBFile, err)
			}
			return nil, err
		}
	}
	var logFile *os.File
	if o.LogFile != "" {
		err := os.MkdirAll(filepath.Dir(o.LogFile), 0o700)
		if err == nil {
			logFile, err = os.OpenFile(o.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		}
		if err != nil {
			lock.unlock()
			return nil, fmt.Errorf("open Temporal log file: %w", err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	attempts := 1
	if o.Port == 0 || o.UIPort == 0 {
		attempts = 3 // ports we picked may be taken before the server binds them
	}
	for i := 0; ; i++ {
		t, err := startTemporalOnce(ctx, o, saTypes, lock, logFile)
		if err == nil {
			return t, nil
		}
		if i+1 < attempts && strings.Contains(strings.ToLower(err.Error()), "address already in use") && ctx.Err() == nil {
			o.Logger.Warn("Temporal port taken, retrying with another", "err", err)
			continue
		}
		lock.unlock()
		if logFile != nil {
			_ = logFile.Close()
		}
		return nil, err
	}
}

func startTemporalOnce(ctx context.Context, o TemporalOptions, saTypes map[string]enums.IndexedValueType, lock *fileLock, logFile *os.File) (*Temporal, error) {
	port, uiPort := o.Port, o.UIPort
	var err error
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	if uiPort == 0 {
		if uiPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--log-level", "warn", "--disable-config-file", "--disable-config-env"}
	if uiPort < 0 {
		args = append(args, "--headless")
	} else {
		args = append(args, "--ui-port", strconv.Itoa(uiPort))
	}
	if o.DBFile != "" {
		args = append(args, "--db-filename", o.DBFile)
	}
	if o.Namespace != "default" {
		args = append(args, "--namespace", o.Namespace)
	}
	for _, name := range slices.Sorted(maps.Keys(o.SearchAttributes)) {
		args = append(args, "--search-attribute", name+"="+o.SearchAttributes[name])
	}

	t := &Temporal{
		address:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		namespace:   o.Namespace,
		stopTimeout: o.StopTimeout,
		logger:      o.Logger,
		tail:        newTailBuffer(16 << 10),
		logFile:     logFile,
		lock:        lock,
		exited:      make(chan struct{}),
	}
	if uiPort > 0 {
		t.uiURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(uiPort))
	}
	var out io.Writer = t.tail
	if logFile != nil {
		out = io.MultiWriter(t.tail, logFile)
	}
	// Not CommandContext: ctx bounds the start, not the server's life.
	t.cmd = exec.Command(o.CLIPath, args...)
	t.cmd.Stdout, t.cmd.Stderr = out, out
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setPdeathsig(t.cmd.SysProcAttr, syscall.SIGTERM)
	t.cmd.WaitDelay = 2 * time.Second
	// Pdeathsig fires when the thread that forked the child exits, not the
	// process; Go may end a thread whose goroutine was locked to it. So the
	// child is started from a goroutine locked to its own thread that lives
	// exactly as long as the child.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := t.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		t.waitErr = t.cmd.Wait()
		close(t.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", o.CLIPath, err)
	}
	o.Logger.Info("starting Temporal dev server", "addr", t.address, "ui", t.uiURL, "db", valueOr(o.DBFile, "in-memory"), "pid", t.cmd.Process.Pid)

	if err := t.waitReady(ctx, uiPort, saTypes); err != nil {
		t.kill()
		return nil, fmt.Errorf("temporal dev server did not become ready: %w\noutput (tail):\n%s", err, t.tail)
	}
	o.Logger.Info("Temporal dev server ready", "addr", t.address, "ui", t.uiURL, "namespace", o.Namespace)
	return t, nil
}

// Address is the frontend gRPC address, 127.0.0.1:PORT.
func (t *Temporal) Address() string { return t.address }

// UIURL is the Web UI address, http://127.0.0.1:UIPORT ("" if headless).
func (t *Temporal) UIURL() string { return t.uiURL }

// Namespace is the namespace registered at start.
func (t *Temporal) Namespace() string { return t.namespace }

// Exited is closed when the server process ends, for whatever reason.
func (t *Temporal) Exited() <-chan struct{} { return t.exited }

// ExitError is the server's exit status once Exited is closed (nil before).
// After Stop it reflects the signal that ended it.
func (t *Temporal) ExitError() error {
	select {
	case <-t.exited:
		return t.waitErr
	default:
		return nil
	}
}

// Stop sends SIGTERM to the server's process group, then SIGKILL after the
// grace period, and waits for it to exit. It is idempotent.
func (t *Temporal) Stop() error {
	t.stopOnce.Do(func() {
		t.stopErr = t.terminate()
		if t.logFile != nil {
			_ = t.logFile.Close()
		}
		t.lock.unlock()
		if t.stopErr == nil {
			t.logger.Info("Temporal dev server stopped", "addr", t.address)
		}
	})
	return t.stopErr
}

func (t *Temporal) terminate() error {
	pid := t.cmd.Process.Pid
	select {
	case <-t.exited:
		_ = signalGroup(pid, syscall.SIGKILL) // stragglers in the group, if any
		return nil
	default:
	}
	_ = signalGroup(pid, syscall.SIGTERM)
	select {
	case <-t.exited:
		return nil
	case <-time.After(t.stopTimeout):
	}
	t.logger.Warn("Temporal dev server ignored SIGTERM; killing it", "pid", pid, "grace", t.stopTimeout)
	t.kill()
	select {
	case <-t.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("temporal dev server (pid %d) did not exit after SIGKILL", pid)
	}
}

// kill SIGKILLs the process group and waits briefly for the exit.
func (t *Temporal) kill() {
	_ = signalGroup(t.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-t.exited:
	case <-time.After(10 * time.Second):
	}
}
