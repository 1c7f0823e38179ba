package devstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/streamspace/enterprise/internal/localproc"
)

// findPostgresBinDir returns the newest /usr/lib/postgresql/*/bin holding
// initdb, else the directory of initdb on PATH.
func findPostgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	type cand struct {
		dir string
		ver int
	}
	var cands []cand
	for _, d := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			cands = append(cands, cand{d, v})
		}
	}
	if len(cands) > 0 {
		sort.Slice(cands, func(i, j int) bool { return cands[i].ver > cands[j].ver })
		return cands[0].dir, nil
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("no PostgreSQL server binaries: no /usr/lib/postgresql/*/bin and no initdb on PATH (install the PostgreSQL server package, e.g. postgresql-15)")
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return filepath.Dir(p), nil
}

var pgVersionRE = regexp.MustCompile(`\(PostgreSQL\)\s+(\d+)`)

// binMajor returns the major version of the binaries in binDir.
func (p *Postgres) binMajor(ctx context.Context) (string, error) {
	out, err := newCmd(ctx, nil, p.env, filepath.Join(p.binDir, "pg_ctl"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", filepath.Join(p.binDir, "pg_ctl"), err)
	}
	m := pgVersionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("unrecognised pg_ctl version %q", bytes.TrimSpace(out))
	}
	return string(m[1]), nil
}

// clusterExists reports whether dir holds an initialised cluster.
func clusterExists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "PG_VERSION"))
	return err == nil
}

// checkVersion fails when the cluster was made by another major version.
func (p *Postgres) checkVersion(ctx context.Context) error {
	b, err := os.ReadFile(filepath.Join(p.dataDir, "PG_VERSION"))
	if err != nil {
		return err
	}
	have := strings.TrimSpace(string(b))
	want, err := p.binMajor(ctx)
	if err != nil {
		return err
	}
	if have != want {
		return fmt.Errorf("%s holds a PostgreSQL %s cluster but the binaries in %s are version %s: delete the directory (and %s) to start afresh, or point BinDir at version %s",
			p.dataDir, have, p.binDir, want, p.passwordFile, have)
	}
	return nil
}

// initCluster runs initdb in a temporary sibling directory and renames it to
// dataDir once complete, so a killed initdb never leaves a half cluster.
func (p *Postgres) initCluster(ctx context.Context, noSync bool) error {
	if entries, err := os.ReadDir(p.dataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty and holds no PostgreSQL cluster (no PG_VERSION); refusing to touch it", p.dataDir)
	}
	tmp := p.dataDir + ".initdb-tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := chownTo(tmp, p.as); err != nil {
		return err
	}

	password, err := newPassword()
	if err != nil {
		return err
	}
	pwf, err := os.CreateTemp("", "streamspace-initdb-pw-*")
	if err != nil {
		return err
	}
	defer os.Remove(pwf.Name())
	_, err = pwf.WriteString(password + "\n")
	if cerr := pwf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := chownTo(pwf.Name(), p.as); err != nil {
		return err
	}

	args := []string{"-D", tmp, "-U", p.user, "--auth=scram-sha-256", "--pwfile=" + pwf.Name(),
		"-E", "UTF8", "--locale=C"}
	if noSync {
		args = append(args, "--no-sync")
	}
	p.logger.Info("creating PostgreSQL cluster (initdb)", "dir", p.dataDir, "user", p.user)
	if out, err := newCmd(ctx, p.as, p.env, filepath.Join(p.binDir, "initdb"), args...).CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, bytes.TrimSpace(out))
	}
	// The password is stored before the cluster appears at dataDir: a
	// cluster without its password file only happens if the file is deleted.
	if err := writeFileAtomic(p.passwordFile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("store password: %w", err)
	}
	if err := os.Rename(tmp, p.dataDir); err != nil {
		return fmt.Errorf("move new cluster into place: %w", err)
	}
	p.password = password
	return nil
}

// loadPassword reads the password file; when it is missing the role's
// password is reset in single-user mode (the server must be stopped).
func (p *Postgres) loadPassword(ctx context.Context) error {
	b, err := os.ReadFile(p.passwordFile)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		p.password = string(bytes.TrimSpace(b))
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read password file: %w", err)
	}
	p.logger.Warn("PostgreSQL password file missing; resetting the password in single-user mode", "file", p.passwordFile, "role", p.user)
	password, err := newPassword()
	if err != nil {
		return err
	}
	cmd := newCmd(ctx, p.as, p.env, filepath.Join(p.binDir, "postgres"),
		"--single", "-D", p.dataDir, "-c", "listen_addresses=", "-c", "unix_socket_directories=", "postgres")
	// The password is hex, so it needs no quoting; the role name is an identifier.
	cmd.Stdin = strings.NewReader(fmt.Sprintf("ALTER ROLE %s WITH PASSWORD '%s';\n", quoteIdent(p.user), password))
	out, err := cmd.CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("ERROR:")) || bytes.Contains(out, []byte("FATAL:")) {
		return fmt.Errorf("reset password for role %q in single-user mode: %v\n%s", p.user, err, bytes.TrimSpace(out))
	}
	if err := writeFileAtomic(p.passwordFile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("store password: %w", err)
	}
	p.password = password
	return nil
}

// clearLeftoverServer deals with a postmaster.pid left by a previous run,
// which is dead since this process holds the data directory lock: a server
// it left running is stopped, a pid file naming an unrelated live process is
// removed, and one naming a dead process is left to postgres.
func (p *Postgres) clearLeftoverServer(ctx context.Context) error {
	pidFile := filepath.Join(p.dataDir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	switch {
	case err != nil || pid <= 0:
		p.logger.Warn("removing unreadable postmaster.pid", "file", pidFile)
		return os.Remove(pidFile)
	case !localproc.Alive(pid):
		p.logger.Info("stale postmaster.pid from a previous run (process gone); postgres will replace it", "pid", pid)
		return nil
	case !p.isOurPostmaster(pid):
		p.logger.Warn("removing stale postmaster.pid naming an unrelated live process", "pid", pid)
		return os.Remove(pidFile)
	}
	p.logger.Warn("a PostgreSQL server left by a previous run is still running; restarting it", "pid", pid, "dir", p.dataDir)
	if out, err := p.pgCtl(ctx, "stop", "-D", p.dataDir, "-m", "fast", "-w", "-t", "60"); err != nil {
		return fmt.Errorf("stop leftover server (pid %d): %w\n%s", pid, err, out)
	}
	return nil
}

// isOurPostmaster reports whether pid is a postgres process started on this
// data directory. When /proc is unavailable it assumes so (pg_ctl stop is
// then the safe next step).
func (p *Postgres) isOurPostmaster(pid int) bool {
	args, ok := localproc.Args(pid)
	if !ok {
		return true
	}
	if base := filepath.Base(args[0]); base != "postgres" && base != "postmaster" {
		return false
	}
	want, _ := filepath.EvalSymlinks(p.dataDir)
	for i := 1; i+1 < len(args); i++ {
		if args[i] != "-D" {
			continue
		}
		got, _ := filepath.EvalSymlinks(args[i+1])
		if args[i+1] == p.dataDir || (got != "" && got == want) {
			return true
		}
	}
	return false
}

// pgCtl runs pg_ctl as the cluster's user and returns its combined output.
func (p *Postgres) pgCtl(ctx context.Context, args ...string) (string, error) {
	out, err := newCmd(ctx, p.as, p.env, filepath.Join(p.binDir, "pg_ctl"), args...).CombinedOutput()
	return string(bytes.TrimSpace(out)), err
}

func newPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// quoteIdent quotes a SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
