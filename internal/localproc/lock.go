package localproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrLocked is returned by TryLock when another live process holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock is an exclusive flock(2) on a file. The kernel releases it when the
// holding process dies, so a killed run never leaves a stale lock.
type Lock struct{ f *os.File }

// TryLock takes the lock without waiting. When it is held elsewhere the error
// wraps ErrLocked and names the holder's pid (written into the file by it).
func TryLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w (pid %s)", path, ErrLocked, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// WaitLock polls TryLock until it succeeds or ctx ends, calling onWait once
// if it has to wait.
func WaitLock(ctx context.Context, path string, onWait func(error)) (*Lock, error) {
	delay := 100 * time.Millisecond
	waited := false
	for {
		l, err := TryLock(path)
		if err == nil || !errors.Is(err, ErrLocked) {
			return l, err
		}
		if !waited && onWait != nil {
			onWait(err)
			waited = true
		}
		if err := Sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", path, err)
		}
		delay = Backoff(delay, 2*time.Second)
	}
}

// Unlock releases the lock; safe on nil and more than once.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Close() // closing the descriptor drops the flock
	l.f = nil
}
