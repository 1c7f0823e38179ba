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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/streamspace/enterprise/internal/localproc"
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
	proc                      *localproc.Child
	tail                      *localproc.TailBuffer
	logFile                   *os.File
	lock                      *localproc.Lock

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
	if !localproc.IsExecutable(o.CLIPath) {
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
	var lock *localproc.Lock
	if o.DBFile != "" {
		if o.DBFile, err = filepath.Abs(o.DBFile); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(o.DBFile), 0o700); err != nil {
			return nil, err
		}
		if lock, err = localproc.TryLock(o.DBFile + ".lock"); err != nil {
			if errors.Is(err, localproc.ErrLocked) {
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
			lock.Unlock()
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
		lock.Unlock()
		if logFile != nil {
			_ = logFile.Close()
		}
		return nil, err
	}
}

func startTemporalOnce(ctx context.Context, o TemporalOptions, saTypes map[string]enums.IndexedValueType, lock *localproc.Lock, logFile *os.File) (*Temporal, error) {
	port, uiPort := o.Port, o.UIPort
	var err error
	if port == 0 {
		if port, err = localproc.FreePort(); err != nil {
			return nil, err
		}
	}
	if uiPort == 0 {
		if uiPort, err = localproc.FreePort(); err != nil {
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
		// WAL with synchronous=normal: still safe against a killed process
		// (TestTemporalDBFileAfterKill), and it takes the SQLite file's
		// fsync off every commit: make run's burst of 2,000 events to 10
		// webhooks drained at 388 deliveries/s instead of 250 when measured.
		args = append(args, "--db-filename", o.DBFile,
			"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
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
		tail:        localproc.NewTailBuffer(16 << 10),
		logFile:     logFile,
		lock:        lock,
	}
	if uiPort > 0 {
		t.uiURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(uiPort))
	}
	var out io.Writer = t.tail
	if logFile != nil {
		out = io.MultiWriter(t.tail, logFile)
	}
	// Not CommandContext: ctx bounds the start, not the server's life.
	cmd := exec.Command(o.CLIPath, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	if t.proc, err = localproc.Start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.CLIPath, err)
	}
	o.Logger.Info("starting Temporal dev server", "addr", t.address, "ui", t.uiURL, "db", valueOr(o.DBFile, "in-memory"), "pid", t.proc.Pid())

	if err := t.waitReady(ctx, uiPort, saTypes); err != nil {
		t.proc.Kill()
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
func (t *Temporal) Exited() <-chan struct{} { return t.proc.Exited() }

// ExitError is the server's exit status once Exited is closed (nil before).
// After Stop it reflects the signal that ended it.
func (t *Temporal) ExitError() error { return t.proc.Err() }

// Stop sends SIGTERM to the server's process group, then SIGKILL after the
// grace period, and waits for it to exit. It is idempotent.
func (t *Temporal) Stop() error {
	t.stopOnce.Do(func() {
		t.stopErr = t.terminate()
		if t.logFile != nil {
			_ = t.logFile.Close()
		}
		t.lock.Unlock()
		if t.stopErr == nil {
			t.logger.Info("Temporal dev server stopped", "addr", t.address)
		}
	})
	return t.stopErr
}

func (t *Temporal) terminate() error {
	killed, err := t.proc.Stop(t.stopTimeout)
	if killed {
		t.logger.Warn("Temporal dev server ignored SIGTERM; killed it", "pid", t.proc.Pid(), "grace", t.stopTimeout)
	}
	if err != nil {
		return fmt.Errorf("temporal dev server: %w", err)
	}
	return nil
}
