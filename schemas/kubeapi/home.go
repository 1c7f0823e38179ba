package kubeapi

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// A user's persistent home is one PersistentVolumeClaim in the sessions'
// namespace, named HomeClaimName(user id) and labelled LabelHome and
// LabelManaged; every session of the user with spec.persistentHome mounts
// it. It outlives sessions and hibernation: only DELETE /api/users/me/home,
// DELETE /api/admin/users/{id}/home or deleting the user removes it.
const (
	// LabelUserID on a Session (set by the API's lifecycle run) is the id of
	// its user, which names the user's home claim; on the claim it is the
	// same id.
	LabelUserID = "stream.space/user-id"
	// LabelHome on a claim marks it as a user's StreamSpace home.
	LabelHome = "stream.space/home"
	// HomeVolumeName is the pod volume the claim is mounted from.
	HomeVolumeName = "home"
	// DefaultHomePath is where the home is mounted when the template names
	// no volumeMounts: the config/home directory of the linuxserver.io
	// images StreamSpace templates are built from.
	DefaultHomePath = "/config"
)

// homePrefix starts every home claim's name.
const homePrefix = "home-"

// HomeClaimName is the name of the home claim of the user whose key (the
// user id; spec.user for a Session made without LabelUserID) is given. A
// key that is a valid DNS label once lower-cased and short enough is kept
// as it is (a UUID is); anything else is mapped to [a-z0-9-], cut, and
// suffixed with 8 hex digits of its SHA-256, so two keys never share a
// claim and the name is always a valid object name.
func HomeClaimName(key string) string {
	lower := strings.ToLower(key)
	if lower == key && len(validation.IsDNS1123Label(homePrefix+key)) == 0 {
		return homePrefix + key
	}
	mapped := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, lower)
	mapped = strings.Trim(mapped, "-")
	const room = validation.DNS1123LabelMaxLength - len(homePrefix) - 1 - 8
	if len(mapped) > room {
		mapped = strings.TrimRight(mapped[:room], "-")
	}
	sum := sha256.Sum256([]byte(key))
	hash := hex.EncodeToString(sum[:4])
	if mapped == "" {
		return homePrefix + hash
	}
	return homePrefix + mapped + "-" + hash
}
