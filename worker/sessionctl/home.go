package sessionctl

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// DefaultHomeSize is the size a new home claim requests unless Home.Size
// says otherwise.
var DefaultHomeSize = resource.MustParse("10Gi")

// Home configures users' persistent home claims.
type Home struct {
	// StorageClass of new home claims; empty leaves storageClassName unset,
	// so the cluster's default StorageClass provisions them.
	StorageClass string
	// Size a new home claim requests; zero: DefaultHomeSize.
	Size resource.Quantity
}

// wantsHome: spec.persistentHome, true unless set false (the CRD's default).
func wantsHome(s *kubeapi.Session) bool {
	return s.Spec.PersistentHome == nil || *s.Spec.PersistentHome
}

// homeKey is what names the session's home claim: its user's id (the
// LabelUserID the API's sessions carry), else spec.user.
func homeKey(s *kubeapi.Session) string {
	if id := s.Labels[kubeapi.LabelUserID]; id != "" {
		return id
	}
	return s.Spec.User
}

// ensureHome makes sure the home claim of the session's user exists (two
// sessions of one user share it) and returns its name, or the status saying
// why the pod cannot be made yet. The claim has no owner: it outlives every
// session and hibernation, and is deleted only on request
// (activities.DeleteHome).
func (c *Controller) ensureHome(ctx context.Context, s *kubeapi.Session) (string, *observed, error) {
	key := homeKey(s)
	name := kubeapi.HomeClaimName(key)
	claims := c.kube.Clientset.CoreV1().PersistentVolumeClaims(c.ns)
	pvc, err := claims.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		pvc, err = claims.Create(ctx, c.homeClaim(name, key), metav1.CreateOptions{})
		switch {
		case err == nil:
			c.log.Info("created home claim", "claim", name, "session", s.Name, "storage_class", c.home.StorageClass)
		case apierrors.IsAlreadyExists(err): // another session of the user, just now
			pvc, err = claims.Get(ctx, name, metav1.GetOptions{})
		case apierrors.IsInvalid(err): // permanent until the configuration changes
			return "", failed(ReasonHomeRejected, "home volume claim %q refused by the API server: %v", name, err), nil
		}
	}
	if err != nil {
		return "", &observed{phase: kubeapi.PhasePending, reason: ReasonHomePending,
			message: fmt.Sprintf("cannot create home volume claim %q yet: %v", name, err)}, fmt.Errorf("home claim %s: %w", name, err)
	}
	switch {
	case pvc.Labels[kubeapi.LabelHome] != "true":
		return "", failed(ReasonHomeConflict, "persistent volume claim %q already exists and is not a StreamSpace home", name), nil
	case pvc.DeletionTimestamp != nil:
		// Deleted on request a moment ago: a new, empty home is made once
		// the old one is gone (retried with back-off).
		return "", &observed{phase: kubeapi.PhasePending, reason: ReasonHomePending,
				message: fmt.Sprintf("waiting for the deleted home volume claim %q to be gone", name)},
			fmt.Errorf("home claim %s is being deleted", name)
	}
	return name, nil, nil
}

// homeClaim is a new home claim: labelled as StreamSpace's and with its
// user's id, ReadWriteOnce, of the configured class and size.
func (c *Controller) homeClaim(name, key string) *corev1.PersistentVolumeClaim {
	size := c.home.Size
	if size.IsZero() {
		size = DefaultHomeSize
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: c.ns,
			Labels: map[string]string{
				kubeapi.LabelHome:    "true",
				kubeapi.LabelUserID:  labelValue(key),
				kubeapi.LabelManaged: kubeapi.ManagedBy,
			},
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	if c.home.StorageClass != "" {
		pvc.Spec.StorageClassName = new(c.home.StorageClass)
	}
	return pvc
}
