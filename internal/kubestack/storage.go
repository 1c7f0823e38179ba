package kubestack

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// StorageClassName is the local cluster's default StorageClass: its claims
// are provisioned by kube-controller-manager's in-tree hostPath provisioner
// (a directory under /tmp/hostpath_pv per volume, removed with the claim)
// and bound at once, so persistent volume claims behave as on a real
// cluster: Pending, then Bound, and a pod using one is scheduled once it is
// bound. kwok's pods mount nothing; the directories stay empty.
const StorageClassName = "local-hostpath"

// createStorageClass creates StorageClassName, marked the cluster's
// default class, unless a run before this one (a kept RunDir) did. Only
// with the controllers: without kube-controller-manager nothing would
// provision its claims.
func (c *Cluster) createStorageClass(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return err
	}
	immediate, reclaim := storagev1.VolumeBindingImmediate, corev1.PersistentVolumeReclaimDelete
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: StorageClassName, Annotations: map[string]string{
			"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner:       "kubernetes.io/host-path",
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &immediate,
	}
	_, err = client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create StorageClass %s: %w", StorageClassName, err)
	}
	return nil
}
