package devstack

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// postgresRunAs picks the account the PostgreSQL binaries run as. When not
// root: the current user (nil). When root (which initdb and postgres refuse):
// the owner of an existing data directory if it is not root, else "postgres",
// else "nobody".
func postgresRunAs(dataDir string) (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if st, err := os.Stat(dataDir); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
			u := &osUser{name: strconv.Itoa(int(sys.Uid)), uid: sys.Uid, gid: sys.Gid}
			if lu, err := user.LookupId(strconv.Itoa(int(sys.Uid))); err == nil {
				u.name = lu.Username
				if gid, err := strconv.ParseUint(lu.Gid, 10, 32); err == nil {
					u.gid = uint32(gid)
				}
			}
			return u, nil
		}
	}
	for _, name := range []string{"postgres", "nobody"} {
		lu, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(lu.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(lu.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &osUser{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root, and neither a %q nor a %q user exists to run PostgreSQL as", "postgres", "nobody")
}

// chownTo gives path to the user (no-op for the current user).
func chownTo(path string, as *osUser) error {
	if as == nil {
		return nil
	}
	if err := os.Lchown(path, int(as.uid), int(as.gid)); err != nil {
		return fmt.Errorf("chown %s to %s: %w", path, as.name, err)
	}
	return nil
}

// ensureSearchable makes every directory from / down to dir searchable (x)
// by the user, adding only o+x where it is missing, and logs each change.
func ensureSearchable(dir string, as *osUser, logger *slog.Logger) error {
	if as == nil {
		return nil
	}
	var chain []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		chain = append(chain, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		d := chain[i]
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok || canSearch(st.Mode(), sys, as) {
			continue
		}
		mode := st.Mode().Perm() | 0o001
		if err := os.Chmod(d, mode); err != nil {
			return fmt.Errorf("let user %s reach %s: %w", as.name, dir, err)
		}
		logger.Info("granted search permission (o+x) so PostgreSQL can reach its data directory",
			"dir", d, "user", as.name, "mode", fmt.Sprintf("%04o", mode))
	}
	return nil
}

// canSearch applies the owner/group/other permission check for as (its
// primary group only: the children run without supplementary groups).
func canSearch(mode fs.FileMode, st *syscall.Stat_t, as *osUser) bool {
	switch {
	case st.Uid == as.uid:
		return mode&0o100 != 0
	case st.Gid == as.gid:
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}
