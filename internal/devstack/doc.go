// Package devstack starts the local dependencies of the StreamSpace dev stack
// and of test runs: a private PostgreSQL cluster (initdb + pg_ctl) and a
// Temporal dev server (the pinned Temporal CLI running `server start-dev`).
// It is used by `streamspace dev` and `streamspace testenv`. Unix only.
//
// # PostgreSQL
//
// Authentication: the cluster is created with
// `initdb --auth=scram-sha-256 --pwfile=...` for a superuser role
// (default "streamspace") whose password is generated at initdb time and
// stored in a 0600 file next to the data directory
// (<DataDir>.password, e.g. .data/postgres.password). The server listens
// on 127.0.0.1 only and has no Unix socket at all
// (unix_socket_directories is set empty), so every connection goes over loopback TCP
// with a password; URL() carries it. If the password file is lost, the
// password is reset in single-user mode on the next start.
//
// Ports: nothing about the port is written into postgresql.conf. Every start
// passes -p PORT (and listen_addresses, unix_socket_directories) through
// `pg_ctl start -o`, so each run may use a different free port.
//
// Ownership: a flock on <DataDir>.lock is held from StartPostgres until Stop
// (the kernel drops it when the process dies), so two live processes can
// never drive the same cluster; the second gets an "in use" error.
// Holding that lock, StartPostgres treats what it finds as left over by a
// dead run:
//   - postmaster.pid naming a live postgres process for this data directory
//     (the previous run was SIGKILLed and the daemonised server survived):
//     the server is stopped (pg_ctl stop -m fast) and started again with this
//     run's options. It is restarted rather than reused so that the port and
//     settings are the ones asked for and its lifetime is tied to the handle.
//   - postmaster.pid naming a live process that is not that postmaster
//     (PID reuse, which postgres itself refuses): the file is removed.
//   - postmaster.pid naming a dead process: left for postgres, which handles
//     it itself (including its check for orphaned shared memory).
//   - <DataDir>.initdb-tmp (initdb was killed): removed; initdb always runs
//     in that temporary sibling, which is renamed to DataDir only when
//     complete, so a half-initialised cluster is never mistaken for one.
//
// Running as root: initdb, pg_ctl and postgres refuse to run as root, so they
// run as the owner of an existing data directory, else as the "postgres"
// user, else "nobody" (exec.Cmd SysProcAttr.Credential). The data directory
// is chowned to that user, and every ancestor directory that user could not
// search gets o+x (search only, never read or write; each change is logged).
// Directories the package creates are 0700.
//
// # Temporal
//
// EnsureTemporalCLI builds the pinned CLI once into a versioned cache
// (DefaultCacheDir()/bin/temporal-v1.5.1/temporal; about 5 minutes on two
// cores, a step of the caller's buildprogress.Progress) under a build lock,
// into a temporary directory that is renamed into place, so a killed build leaves no
// half binary. StartTemporal runs `temporal server start-dev` on loopback in
// its own process group with Pdeathsig=SIGTERM (Linux) so it does not
// outlive its parent, waits for the frontend health check, the namespace and
// the search attributes (registering any that an existing SQLite file lacks),
// and Stop sends SIGTERM to the group, then SIGKILL after a grace period.
// With a DBFile, a flock on <DBFile>.lock guards against two live servers on
// one file; SQLite recovers its own journal after a killed run.
//
// Child processes are started with Setpgid, so a Ctrl-C in the terminal
// reaches only the parent, which then stops them in order. The file locks,
// free ports and process handling are internal/localproc's, shared with
// internal/kubestack.
package devstack
