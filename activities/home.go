package activities

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// ErrNoHome: the user has no persistent home claim.
var ErrNoHome = errors.New("the user has no persistent home volume")

// DeleteHome deletes the persistent home claim of user userID in the
// sessions' namespace (kubeapi.HomeClaimName), and with it, through the
// StorageClass's reclaim policy, its volume. Only a claim labelled as a
// StreamSpace home is deleted; ErrNoHome when there is none. Kubernetes
// keeps a claim a pod still mounts until that pod is gone.
func DeleteHome(ctx context.Context, kube *Kube, userID string) error {
	claims := kube.Clientset.CoreV1().PersistentVolumeClaims(kube.Namespace)
	name := kubeapi.HomeClaimName(userID)
	pvc, err := claims.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return ErrNoHome
	case err != nil:
		return fmt.Errorf("get home claim %s: %w", name, err)
	case pvc.Labels[kubeapi.LabelHome] != "true" || pvc.Labels[kubeapi.LabelManaged] != kubeapi.ManagedBy:
		return ErrNoHome // someone else's claim of that name: not ours to delete
	}
	uid := pvc.UID
	err = claims.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return ErrNoHome // gone meanwhile
	}
	return fmt.Errorf("delete home claim %s: %w", name, err)
}

// DeleteHomeIfAny is DeleteHome for a user being deleted: no home, or no
// cluster (kube nil), is not an error.
func DeleteHomeIfAny(ctx context.Context, kube *Kube, userID string) error {
	if kube == nil {
		return nil
	}
	if err := DeleteHome(ctx, kube, userID); err != nil && !errors.Is(err, ErrNoHome) {
		return err
	}
	return nil
}
