package schemas

import (
	"fmt"

	"github.com/google/uuid"
)

// RoleActor is who gave an account its role: a signed-in admin (UserID and
// Username), or the OIDC identity provider whose role claim decides it
// (Issuer).
type RoleActor struct {
	UserID   uuid.UUID
	Username string
	Issuer   string
}

func (a RoleActor) name() string {
	if a.Issuer != "" {
		return "the identity provider " + a.Issuer
	}
	return a.Username
}

// RoleChangeAlert is the medium privilege_escalation alert about target,
// whose role became target.Role by actor: oldRole is the role it had, ""
// for an account created with that role. A promotion is how a stolen admin
// session makes itself permanent (and how an identity provider's group
// change reaches StreamSpace), so every change, and every account created
// as an admin, is worth a look. It names who did it, whom, and the old and
// new role; the details hold nothing else. Repeats of the same change fold
// while unresolved.
func RoleChangeAlert(actor RoleActor, target User, oldRole string) AlertInput {
	msg := fmt.Sprintf("%s changed the role of %s from %s to %s", actor.name(), target.Username, oldRole, target.Role)
	details := map[string]any{"target_id": target.ID.String(), "target_username": target.Username,
		"old_role": oldRole, "new_role": target.Role}
	if oldRole == "" {
		msg = fmt.Sprintf("%s created %s with role %s", actor.name(), target.Username, target.Role)
		details["created"] = true
		delete(details, "old_role")
	}
	if actor.Issuer != "" {
		details["issuer"] = actor.Issuer
	} else {
		details["actor_id"], details["actor_username"] = actor.UserID.String(), actor.Username
	}
	return AlertInput{
		Kind: AlertPrivilegeEscalation, Severity: SeverityMedium,
		UserID: target.ID, Username: target.Username,
		Message:  msg,
		Details:  details,
		DedupKey: fmt.Sprintf("privilege_escalation:role:%s:%s>%s", target.ID, oldRole, target.Role),
	}
}
