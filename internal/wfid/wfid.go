// Package wfid scopes Temporal workflow IDs to one StreamSpace deployment.
//
// Two deployments that share a Temporal namespace would otherwise collide:
// both name a grant's run ipgrant/<row id>, and row ids are small integers
// in every database. Each deployment therefore puts its prefix in front of
// every ID it builds: <prefix>/ipgrant/42. The prefix is configured
// (TEMPORAL_WORKFLOW_ID_PREFIX) or derived from the deployment id stored
// once in PostgreSQL (FromDeployment). An empty prefix builds the legacy,
// unprefixed IDs of the runs started before prefixes existed.
package wfid

import (
	"encoding/hex"
	"fmt"

	"github.com/google/uuid"
)

// MaxPrefixLen bounds a prefix: it is in every workflow ID an operator
// reads in the Web UI, and Temporal caps an ID at 1,000 bytes.
const MaxPrefixLen = 32

// Join is the workflow ID of the run named id (e.g. "ipgrant/42") in the
// deployment of prefix; an empty prefix answers id itself (the legacy ID).
func Join(prefix, id string) string {
	if prefix == "" {
		return id
	}
	return prefix + "/" + id
}

// ValidatePrefix checks a configured prefix: 1 to MaxPrefixLen characters,
// lower-case letters, digits, '-', '_' and '.', beginning and ending with a
// letter or digit. A '/' would make the prefix look like part of an ID, and
// upper case or spaces are hard to type into a Web UI search.
func ValidatePrefix(p string) error {
	if p == "" {
		return fmt.Errorf("empty")
	}
	if len(p) > MaxPrefixLen {
		return fmt.Errorf("%d characters; at most %d", len(p), MaxPrefixLen)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("%q is not allowed (use a-z, 0-9, '-', '_', '.')", string(c))
		}
		if !alnum && (i == 0 || i == len(p)-1) {
			return fmt.Errorf("must begin and end with a letter or digit")
		}
	}
	return nil
}

// FromDeployment derives the default prefix from a deployment id: "ss-"
// and the id's first 12 hex digits (48 random bits of a version 4 UUID:
// two deployments collide with a chance of about 1 in 10^14).
func FromDeployment(id uuid.UUID) string {
	return "ss-" + hex.EncodeToString(id[:6])
}
