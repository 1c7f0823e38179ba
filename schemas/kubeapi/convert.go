package kubeapi

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// SessionFrom converts an unstructured Session (as the dynamic client and
// its informers return it).
func SessionFrom(obj *unstructured.Unstructured) (*Session, error) {
	var s Session
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &s); err != nil {
		return nil, fmt.Errorf("session %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return &s, nil
}

// TemplateFrom converts an unstructured Template.
func TemplateFrom(obj *unstructured.Unstructured) (*Template, error) {
	var t Template
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &t); err != nil {
		return nil, fmt.Errorf("template %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return &t, nil
}

// Unstructured converts a Session for the dynamic client, with its
// apiVersion and kind set.
func (s *Session) Unstructured() (*unstructured.Unstructured, error) {
	s.APIVersion, s.Kind = Group+"/"+Version, "Session"
	return toUnstructured(s)
}

// Unstructured converts a Template for the dynamic client, with its
// apiVersion and kind set.
func (t *Template) Unstructured() (*unstructured.Unstructured, error) {
	t.APIVersion, t.Kind = Group+"/"+Version, "Template"
	return toUnstructured(t)
}

func toUnstructured(obj any) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	// The converter writes an empty creationTimestamp as null; the API
	// server rejects nothing for it, but drop it to keep objects tidy.
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}
