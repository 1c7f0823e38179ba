package kubeapi

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Requirements turns Resources into a container's requests and limits. The
// short form (CPU, Memory) is a limit and, unless requests say otherwise,
// also the request (so the scheduler reserves what the session may use).
// A nil receiver gives empty requirements.
func (r *Resources) Requirements() (corev1.ResourceRequirements, error) {
	var req corev1.ResourceRequirements
	if r == nil {
		return req, nil
	}
	set := func(list *corev1.ResourceList, name corev1.ResourceName, value string) error {
		if value == "" {
			return nil
		}
		q, err := resource.ParseQuantity(value)
		if err != nil {
			return fmt.Errorf("resources: %s %q: %w", name, value, err)
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = q
		return nil
	}
	for name, v := range r.Requests {
		if err := set(&req.Requests, corev1.ResourceName(name), v); err != nil {
			return req, err
		}
	}
	for name, v := range r.Limits {
		if err := set(&req.Limits, corev1.ResourceName(name), v); err != nil {
			return req, err
		}
	}
	for name, v := range map[corev1.ResourceName]string{corev1.ResourceCPU: r.CPU, corev1.ResourceMemory: r.Memory} {
		if err := set(&req.Limits, name, v); err != nil {
			return req, err
		}
		if _, ok := req.Requests[name]; !ok {
			if err := set(&req.Requests, name, v); err != nil {
				return req, err
			}
		}
	}
	return req, nil
}

// Effective is the session's resources when it names any, else the
// template's defaults.
func Effective(session, template *Resources) *Resources {
	if session != nil && (session.CPU != "" || session.Memory != "" || len(session.Requests) > 0 || len(session.Limits) > 0) {
		return session
	}
	return template
}

// Reserved is what a session holds against quotas and node capacity: its
// CPU in millicores and memory in bytes, taken from the limits (else the
// requests).
func Reserved(req corev1.ResourceRequirements) (cpuMilli, memoryBytes int64) {
	pick := func(name corev1.ResourceName) *resource.Quantity {
		if q, ok := req.Limits[name]; ok {
			return &q
		}
		if q, ok := req.Requests[name]; ok {
			return &q
		}
		return nil
	}
	if q := pick(corev1.ResourceCPU); q != nil {
		cpuMilli = q.MilliValue()
	}
	if q := pick(corev1.ResourceMemory); q != nil {
		memoryBytes = q.Value()
	}
	return cpuMilli, memoryBytes
}
