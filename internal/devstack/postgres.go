package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/streamspace/enterprise/internal/localproc"
)

// PostgresOptions configures StartPostgres. Only DataDir is required.
type PostgresOptions struct {
	// DataDir is the cluster directory; created with initdb when empty or
	// missing, reused when it already holds a cluster. Its parent also holds
	// <base>.password and <base>.lock.
	DataDir string
	// BinDir holds initdb, pg_ctl and postgres. "" = the newest
	// /usr/lib/postgresql/*/bin, else the directory of initdb on PATH.
	BinDir string
	// Port to listen on (127.0.0.1 only). 0 = a free port, new each start.
	Port int
	// Database to create if missing. Default "streamspace".
	Database string
	// User is the superuser role initdb creates. Default "streamspace".
	User string
	// PasswordFile stores the generated password (0600).
	// Default <DataDir>.password, i.e. beside the data directory.
	PasswordFile string
	// LogFile receives the server log (appended). Default <DataDir>/server.log.
	LogFile string
	// NoSync skips fsync (initdb --no-sync, fsync=off, ...): faster, but a
	// machine crash can corrupt the cluster. For throwaway test clusters.
	NoSync bool
	// StatStatements loads pg_stat_statements (statement counts for the
	// benchmarks) when the installation has it; CREATE EXTENSION still
	// enables it per database.
	StatStatements bool
	// StartTimeout bounds pg_ctl start and the first connection. Default 60s.
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// Postgres is a running private cluster started by StartPostgres.
type Postgres struct {
	dataDir, binDir, passwordFile, logFile string
	user, password, database               string
	port                                   int
	as                                     *osUser
	env                                    []string
	logger                                 *slog.Logger
	lock                                   *localproc.Lock

	mu      sync.Mutex
	stopped bool
}

// StartPostgres creates the cluster if needed, starts it on 127.0.0.1 and
// creates the database if missing. It returns once a connection succeeds.
// Call Stop when done; the server is a daemon and outlives this process
// otherwise (the next StartPostgres on the same DataDir restarts it).
func StartPostgres(ctx context.Context, o PostgresOptions) (*Postgres, error) {
	if o.DataDir == "" {
		return nil, errors.New("devstack: PostgresOptions.DataDir is required")
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	p := &Postgres{
		dataDir:      dataDir,
		binDir:       o.BinDir,
		passwordFile: o.PasswordFile,
		logFile:      o.LogFile,
		user:         valueOr(o.User, "streamspace"),
		database:     valueOr(o.Database, "streamspace"),
		logger:       o.Logger,
		// PG* variables (PGDATA, PGPORT, ...) would change what the binaries do.
		env: localproc.EnvWithout([]string{"PG", "LC_ALL="}, "LC_ALL=C"),
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.passwordFile == "" {
		p.passwordFile = dataDir + ".password"
	}
	if p.logFile == "" {
		p.logFile = filepath.Join(dataDir, "server.log")
	}
	if p.binDir == "" {
		if p.binDir, err = findPostgresBinDir(); err != nil {
			return nil, err
		}
	}
	timeout := o.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	parent := filepath.Dir(dataDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, err
	}
	if p.lock, err = localproc.TryLock(dataDir + ".lock"); err != nil {
		if errors.Is(err, localproc.ErrLocked) {
			return nil, fmt.Errorf("data directory %s is in use by another process: %w", dataDir, err)
		}
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			p.lock.Unlock()
		}
	}()
	if p.as, err = postgresRunAs(dataDir); err != nil {
		return nil, err
	}
	if err := ensureSearchable(parent, p.as, p.logger); err != nil {
		return nil, err
	}

	if clusterExists(dataDir) {
		if err := p.checkVersion(ctx); err != nil {
			return nil, err
		}
		if err := p.clearLeftoverServer(ctx); err != nil {
			return nil, err
		}
		if err := p.loadPassword(ctx); err != nil {
			return nil, err
		}
	} else if err := p.initCluster(ctx, o.NoSync); err != nil {
		return nil, err
	}
	if err := p.prepareLogFile(); err != nil {
		return nil, err
	}
	if err := p.startServer(ctx, o.Port, o.NoSync, o.StatStatements); err != nil {
		return nil, err
	}
	if err := p.ensureDatabase(ctx); err != nil {
		_ = p.stopServer(context.WithoutCancel(ctx))
		return nil, err
	}
	ok = true
	p.logger.Info("PostgreSQL ready", "addr", p.hostPort(), "database", p.database, "dir", dataDir)
	return p, nil
}

// startServer runs pg_ctl start, retrying with another free port if the one
// it picked was taken meanwhile.
func (p *Postgres) startServer(ctx context.Context, port int, noSync, statStatements bool) error {
	attempts := 1
	if port == 0 {
		attempts = 3
	}
	preload := ""
	if _, err := os.Stat(filepath.Join(p.binDir, "..", "lib", "pg_stat_statements.so")); statStatements && err == nil {
		preload = " -c shared_preload_libraries=pg_stat_statements"
	}
	for i := 0; ; i++ {
		p.port = port
		if p.port == 0 {
			var err error
			if p.port, err = localproc.FreePort(); err != nil {
				return err
			}
		}
		opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", p.port)
		if noSync {
			opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		}
		opts += preload
		secs := 60
		if dl, ok := ctx.Deadline(); ok {
			secs = max(1, int(time.Until(dl).Seconds()))
		}
		out, err := p.pgCtl(ctx, "start", "-D", p.dataDir, "-l", p.logFile, "-w", "-t", strconv.Itoa(secs), "-o", opts)
		if err == nil {
			return nil
		}
		tail := localproc.ReadTail(p.logFile, 2048)
		_ = p.stopServer(context.WithoutCancel(ctx)) // in case it came up after all
		if i+1 < attempts && strings.Contains(tail, "could not bind") {
			p.logger.Warn("PostgreSQL port taken, retrying with another", "port", p.port)
			continue
		}
		return fmt.Errorf("pg_ctl start: %w\n%s\nserver log %s (tail):\n%s", err, out, p.logFile, tail)
	}
}

// prepareLogFile creates the log file for the cluster's user and starts a
// new file when the old one has grown large.
func (p *Postgres) prepareLogFile() error {
	if st, err := os.Stat(p.logFile); err == nil && st.Size() > 16<<20 {
		_ = os.Rename(p.logFile, p.logFile+".old")
	}
	f, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create PostgreSQL log file: %w", err)
	}
	_ = f.Close()
	return chownTo(p.logFile, p.as)
}

// ensureDatabase connects (retrying briefly while the server settles) and
// creates the database if missing.
func (p *Postgres) ensureDatabase(ctx context.Context) error {
	var conn *pgx.Conn
	delay := 50 * time.Millisecond
	for {
		var err error
		conn, err = pgx.Connect(ctx, p.URLFor("postgres"))
		if err == nil {
			break
		}
		if localproc.Sleep(ctx, delay) != nil {
			return fmt.Errorf("connect to PostgreSQL at %s: %w", p.hostPort(), err)
		}
		delay = localproc.Backoff(delay, time.Second)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return createDatabase(ctx, conn, p.database)
}

// CreateDatabase creates a database in the cluster if it does not exist
// (e.g. one per test package); connect to it with URLFor(name).
func (p *Postgres) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, p.URLFor("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return createDatabase(ctx, conn, name)
}

func createDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// URL is the connection URL of the database:
// postgres://USER:PASSWORD@127.0.0.1:PORT/DB?sslmode=disable.
func (p *Postgres) URL() string { return p.URLFor(p.database) }

// URLFor is the connection URL of another database in the same cluster.
func (p *Postgres) URLFor(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(p.user, p.password),
		Host:     p.hostPort(),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port is the TCP port the server listens on (127.0.0.1).
func (p *Postgres) Port() int { return p.port }

// DataDir is the absolute cluster directory.
func (p *Postgres) DataDir() string { return p.dataDir }

func (p *Postgres) hostPort() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// Stop shuts the server down (pg_ctl stop -m fast) and releases the data
// directory. It is idempotent; after a failure it may be called again. Pass
// a context that is not already cancelled (e.g. context.WithoutCancel of the
// one Ctrl-C cancelled, with a timeout), or pg_ctl cannot run.
func (p *Postgres) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	if err := p.stopServer(ctx); err != nil {
		return err
	}
	p.stopped = true
	p.lock.Unlock()
	p.logger.Info("PostgreSQL stopped", "dir", p.dataDir)
	return nil
}

// stopServer stops the server if it runs; "not running" is success.
func (p *Postgres) stopServer(ctx context.Context) error {
	out, err := p.pgCtl(ctx, "stop", "-D", p.dataDir, "-m", "fast", "-w", "-t", "60")
	if err == nil {
		return nil
	}
	// pg_ctl status exits 3 when no server is running.
	if _, serr := p.pgCtl(ctx, "status", "-D", p.dataDir); exitCode(serr) == 3 {
		return nil
	}
	return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
}

func valueOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
