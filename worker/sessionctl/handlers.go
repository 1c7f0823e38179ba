package sessionctl

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// byTemplate indexes Sessions by spec.template.
const byTemplate = "template"

func sessionTemplateIndex(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil
	}
	name, _, _ := unstructured.NestedString(u.Object, "spec", "template")
	if name == "" {
		return nil, nil
	}
	return []string{name}, nil
}

// addHandlers wires the informers to the queue: a Session event queues that
// session, a pod event its owning session, a Template event every session
// that uses the template.
func (c *Controller) addHandlers() error {
	if _, err := c.sessions.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueueObject(obj) },
		UpdateFunc: func(_, obj any) { c.enqueueObject(obj) },
		DeleteFunc: func(obj any) { c.enqueueObject(obj) },
	}); err != nil {
		return fmt.Errorf("sessionctl: session handler: %w", err)
	}
	if _, err := c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueuePodOwner,
		UpdateFunc: func(_, obj any) { c.enqueuePodOwner(obj) },
		DeleteFunc: c.enqueuePodOwner,
	}); err != nil {
		return fmt.Errorf("sessionctl: pod handler: %w", err)
	}
	if _, err := c.templates.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueTemplateSessions,
		UpdateFunc: func(old, obj any) {
			if metaOf(old).GetResourceVersion() != metaOf(obj).GetResourceVersion() {
				c.enqueueTemplateSessions(obj)
			}
		},
		DeleteFunc: c.enqueueTemplateSessions,
	}); err != nil {
		return fmt.Errorf("sessionctl: template handler: %w", err)
	}
	return nil
}

func (c *Controller) enqueueObject(obj any) {
	if m := metaOf(obj); m != nil {
		c.queue.Add(m.GetName())
	}
}

// enqueuePodOwner queues the Session that controls the pod, else the one
// its session label names.
func (c *Controller) enqueuePodOwner(obj any) {
	m := metaOf(obj)
	if m == nil {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil && ref.Kind == "Session" && isSessionAPIVersion(ref.APIVersion) {
		c.queue.Add(ref.Name)
		return
	}
	if name := m.GetLabels()[kubeapi.LabelSession]; name != "" {
		c.queue.Add(name)
	}
}

// enqueueTemplateSessions queues every session using the template: one that
// failed for want of it starts now; running pods are left as they are.
func (c *Controller) enqueueTemplateSessions(obj any) {
	m := metaOf(obj)
	if m == nil {
		return
	}
	keys, err := c.sessions.GetIndexer().IndexKeys(byTemplate, m.GetName())
	if err != nil {
		c.log.Error("sessions by template", "template", m.GetName(), "err", err)
		return
	}
	for _, key := range keys {
		if _, name, err := cache.SplitMetaNamespaceKey(key); err == nil {
			c.queue.Add(name)
		}
	}
}

// metaOf returns the object's metadata, unwrapping the tombstone of a
// delete the informer missed; nil for anything else.
func metaOf(obj any) metav1.Object {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		return o
	case *corev1.Pod:
		return o
	}
	return nil
}

// isSessionAPIVersion: any version of the stream.space group.
func isSessionAPIVersion(apiVersion string) bool {
	gv, err := schema.ParseGroupVersion(apiVersion)
	return err == nil && gv.Group == kubeapi.Group
}
