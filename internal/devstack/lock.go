package devstack

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

// errLocked is returned by tryLock when another live process holds the lock.
var errLocked = errors.New("locked by another process")

// fileLock is an exclusive flock(2) on a file. The kernel releases it when
// the holding process dies, so a killed run never leaves a stale lock.
type fileLock struct{ f *os.File }

// tryLock takes the lock without waiting. When it is held elsewhere the error
// wraps errLocked and names the holder's pid (written into the file by it).
func tryLock(path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w (pid %s)", path, errLocked, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &fileLock{f: f}, nil
}

// lockWait polls tryLock until it succeeds or ctx ends, calling onWait once
// if it has to wait.
func lockWait(ctx context.Context, path string, onWait func(error)) (*fileLock, error) {
	delay := 100 * time.Millisecond
	waited := false
	for {
		l, err := tryLock(path)
		if err == nil || !errors.Is(err, errLocked) {
			return l, err
		}
		if !waited && onWait != nil {
			onWait(err)
			waited = true
		}
		if err := sleepCtx(ctx, delay); err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", path, err)
		}
		delay = backoff(delay, 2*time.Second)
	}
}

// unlock releases the lock; safe on nil and more than once.
func (l *fileLock) unlock() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Close() // closing the descriptor drops the flock
	l.f = nil
}

func itoa(i int) string { return strconv.Itoa(i) }
