// Package kubeapi holds the Kubernetes data contracts of StreamSpace: the Go
// types of the Session and Template custom resources (stream.space/v1alpha1,
// CRDs in deploy/crds), their group-version-resources, the labels and
// annotations the controller puts on session pods, and conversion to and
// from the unstructured objects of client-go's dynamic client.
//
// The types are field-compatible with the open-source StreamSpace CRDs, so
// objects written by either side read the same.
package kubeapi
