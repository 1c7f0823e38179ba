package activities

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// EndOrphanSession ends a live session no lifecycle run holds (its run
// could not be started, or an operator ended it): its Session resource is
// deleted (when kube is not nil) and the row records Terminated with
// session.deleted. A session that ended meanwhile is not an error. A
// Kubernetes failure is returned wrapped, so callers can map it.
func EndOrphanSession(ctx context.Context, kube *Kube, store *schemas.Store, row schemas.SessionRow, reason string) error {
	if kube != nil {
		err := kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(row.Namespace).Delete(ctx, row.ID, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete Session %s: %w", row.ID, err)
		}
	}
	_, err := store.TransitionSession(ctx, row.ID, schemas.SessionTransition{State: kubeapi.StateTerminated,
		Phase: kubeapi.PhaseTerminated, Message: reason, Event: schemas.EventSessionDeleted, Reason: reason})
	if errors.Is(err, schemas.ErrSessionEnded) {
		return nil
	}
	return err
}
