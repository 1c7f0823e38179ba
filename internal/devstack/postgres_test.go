package devstack

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/internal/localproc"
)

func startTestPostgres(t *testing.T, o PostgresOptions) *Postgres {
	t.Helper()
	o.Logger = testLogger(t)
	start := time.Now()
	p, err := StartPostgres(t.Context(), o)
	if err != nil {
		t.Fatalf("StartPostgres: %v", err)
	}
	t.Logf("StartPostgres took %s (port %d)", time.Since(start).Round(time.Millisecond), p.Port())
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Errorf("cleanup Stop: %v", err)
		}
	})
	return p
}

func stopPostgres(t *testing.T, p *Postgres) {
	t.Helper()
	if err := p.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func query(t *testing.T, url, sql string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func exec1(t *testing.T, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// A new cluster is created, answers, stops, and the next start on the same
// directory reuses it (data kept); a second owner is refused meanwhile.
func TestPostgresCreateStopReuse(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), ".data", "postgres")
	p := startTestPostgres(t, PostgresOptions{DataDir: dataDir, Database: "app"})

	if got := query(t, p.URL(), "SELECT 1::text"); got != "1" {
		t.Fatalf("SELECT 1 = %q", got)
	}
	wantPrefix := "postgres://streamspace:"
	wantSuffix := "@127.0.0.1:" + strconv.Itoa(p.Port()) + "/app?sslmode=disable"
	if u := p.URL(); !strings.HasPrefix(u, wantPrefix) || !strings.HasSuffix(u, wantSuffix) {
		t.Fatalf("URL() = %q, want %s...%s", u, wantPrefix, wantSuffix)
	}
	if st, err := os.Stat(dataDir + ".password"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v, mode %v", err, st.Mode())
	}
	exec1(t, p.URL(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")

	// Without the password the server refuses (scram-sha-256, no trust).
	noPw := strings.Replace(p.URL(), ":"+p.password+"@", "@", 1)
	if conn, err := pgx.Connect(t.Context(), noPw); err == nil {
		conn.Close(t.Context())
		t.Fatal("connected without a password")
	}

	if _, err := StartPostgres(t.Context(), PostgresOptions{DataDir: dataDir, Logger: testLogger(t)}); !errors.Is(err, localproc.ErrLocked) {
		t.Fatalf("second StartPostgres on a live data dir: err = %v, want localproc.ErrLocked", err)
	}

	port := p.Port()
	stopPostgres(t, p)
	stopPostgres(t, p) // idempotent
	if localproc.PortAccepts(port, time.Second) {
		t.Fatalf("port %d still accepts connections after Stop", port)
	}

	p2 := startTestPostgres(t, PostgresOptions{DataDir: dataDir, Database: "app"})
	if got := query(t, p2.URL(), "SELECT v FROM kept"); got != "still here" {
		t.Fatalf("after restart: %q", got)
	}
	stopPostgres(t, p2)
}

// Leftovers of killed runs do not block the next start.
func TestPostgresLeftovers(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "pg")
	opts := PostgresOptions{DataDir: dataDir, NoSync: true}
	pidFile := filepath.Join(dataDir, "postmaster.pid")

	p := startTestPostgres(t, opts)
	pidContent, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	stopPostgres(t, p)
	withPID := func(pid int) []byte {
		_, rest, _ := strings.Cut(string(pidContent), "\n")
		return []byte(strconv.Itoa(pid) + "\n" + rest)
	}

	t.Run("pid file naming a live unrelated process", func(t *testing.T) {
		// postgres itself refuses this one ("Is another postmaster running?").
		if err := os.WriteFile(pidFile, withPID(os.Getpid()), 0o600); err != nil {
			t.Fatal(err)
		}
		p := startTestPostgres(t, opts)
		query(t, p.URL(), "SELECT 1::text")
		stopPostgres(t, p)
	})

	t.Run("pid file naming a dead process", func(t *testing.T) {
		c := exec.Command("true")
		if err := c.Run(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pidFile, withPID(c.ProcessState.Pid()), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := chownTo(pidFile, p.as); err != nil { // as the dead server would have left it
			t.Fatal(err)
		}
		p := startTestPostgres(t, opts)
		query(t, p.URL(), "SELECT 1::text")
		stopPostgres(t, p)
	})

	t.Run("server left running by a killed run", func(t *testing.T) {
		old := startTestPostgres(t, opts)
		oldPID := postmasterPID(t, pidFile)
		old.lock.Unlock() // what the kernel does when the owning process dies

		p := startTestPostgres(t, opts)
		if postmasterPID(t, pidFile) == oldPID || localproc.PortAccepts(old.Port(), time.Second) {
			t.Fatalf("the old server (pid %d, port %d) still runs", oldPID, old.Port())
		}
		query(t, p.URL(), "SELECT 1::text")
		stopPostgres(t, p)
		old.stopped = true // its server is gone; keep cleanup from touching the directory
	})

	t.Run("password file lost", func(t *testing.T) {
		if err := os.Remove(dataDir + ".password"); err != nil {
			t.Fatal(err)
		}
		p := startTestPostgres(t, opts)
		query(t, p.URL(), "SELECT 1::text")
		stopPostgres(t, p)
	})

	t.Run("half-finished initdb", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "pg")
		if err := os.MkdirAll(filepath.Join(dir+".initdb-tmp", "base"), 0o700); err != nil {
			t.Fatal(err)
		}
		p := startTestPostgres(t, PostgresOptions{DataDir: dir, NoSync: true})
		query(t, p.URL(), "SELECT 1::text")
		stopPostgres(t, p)
		if _, err := os.Stat(dir + ".initdb-tmp"); !os.IsNotExist(err) {
			t.Fatalf("leftover initdb directory: %v", err)
		}
	})
}

func postmasterPID(t *testing.T, pidFile string) int {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestPostgresRefusesForeignDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := StartPostgres(t.Context(), PostgresOptions{DataDir: dir, Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v, want a refusal", err)
	}
}
