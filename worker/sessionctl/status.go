package sessionctl

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// ConditionReady is the Session condition the controller maintains.
const ConditionReady = "Ready"

// Reasons of the Ready condition.
const (
	ReasonPodReady         = "PodReady"
	ReasonPodNotReady      = "PodNotReady"
	ReasonPodPending       = "PodPending"
	ReasonPodTerminating   = "PodTerminating"
	ReasonPodFailed        = "PodFailed"
	ReasonPodConflict      = "PodConflict"
	ReasonPodRejected      = "PodRejected"
	ReasonTemplateNotFound = "TemplateNotFound"
	ReasonTemplateInvalid  = "TemplateInvalid"
	ReasonStopping         = "Stopping"
	ReasonHibernated       = "Hibernated"
	ReasonTerminated       = "Terminated"
	ReasonInvalidState     = "InvalidState"
	ReasonHomePending      = "HomePending"  // the home claim is being deleted, or cannot be created yet
	ReasonHomeConflict     = "HomeConflict" // a claim of the home's name that is not a StreamSpace home
	ReasonHomeRejected     = "HomeRejected" // the API server refused the home claim
)

// observed is what the controller owns of a Session's status.
type observed struct {
	phase, podName, nodeName, url, message string
	ready                                  bool
	reason                                 string
}

func failed(reason, format string, args ...any) *observed {
	return &observed{phase: kubeapi.PhaseFailed, reason: reason, message: fmt.Sprintf(format, args...)}
}

// fromPod mirrors a pod the session controls.
func fromPod(pod *corev1.Pod) *observed {
	o := &observed{podName: pod.Name, nodeName: pod.Spec.NodeName}
	switch {
	case pod.DeletionTimestamp != nil:
		o.phase, o.reason = kubeapi.PhasePending, ReasonPodTerminating
		o.message = fmt.Sprintf("pod %q is being deleted; a new one follows", pod.Name)
	case pod.Status.Phase == corev1.PodRunning:
		o.phase, o.url = kubeapi.PhaseRunning, podURL(pod)
		if c := podCondition(pod, corev1.PodReady); c != nil && c.Status == corev1.ConditionTrue {
			o.ready, o.reason = true, ReasonPodReady
		} else {
			o.reason, o.message = ReasonPodNotReady, "pod is running but not ready"
			if c != nil && c.Message != "" {
				o.message += ": " + c.Message
			}
		}
	case pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded:
		o.phase, o.reason = kubeapi.PhaseFailed, ReasonPodFailed
		o.message = fmt.Sprintf("pod %q %s", pod.Name, describeEnd(pod))
	default:
		o.phase, o.reason, o.message = kubeapi.PhasePending, ReasonPodPending, pendingMessage(pod)
	}
	return o
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func describeEnd(pod *corev1.Pod) string {
	s := "failed"
	if pod.Status.Phase == corev1.PodSucceeded {
		s = "exited"
	}
	if pod.Status.Reason != "" {
		s += ": " + pod.Status.Reason
	}
	if pod.Status.Message != "" {
		s += ": " + pod.Status.Message
	}
	return s
}

// pendingMessage says what a pending pod waits for.
func pendingMessage(pod *corev1.Pod) string {
	if c := podCondition(pod, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse && c.Message != "" {
		return "pod not scheduled: " + c.Message
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			msg := "container " + w.Reason
			if w.Message != "" {
				msg += ": " + w.Message
			}
			return msg
		}
	}
	if pod.Spec.NodeName == "" {
		return fmt.Sprintf("pod %q waits for a node", pod.Name)
	}
	return fmt.Sprintf("pod %q is starting on node %s", pod.Name, pod.Spec.NodeName)
}

// writeStatus stores o in the Session's status through the status
// subresource if it differs from what is there. On a conflict it re-reads
// the Session and tries again, unless its spec changed meanwhile (the event
// for that change reconciles it anew). Fields it does not own, like
// lastActivity, go back exactly as read.
func (c *Controller) writeStatus(ctx context.Context, current *unstructured.Unstructured, o *observed) error {
	client := c.kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(c.ns)
	generation, uid := current.GetGeneration(), current.GetUID()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		next, err := withStatus(current, o)
		if err != nil || next == nil {
			return err
		}
		_, err = client.UpdateStatus(ctx, next, metav1.UpdateOptions{})
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case !apierrors.IsConflict(err):
			return fmt.Errorf("update status of session %s: %w", current.GetName(), err)
		}
		fresh, gerr := client.Get(ctx, current.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(gerr):
			return nil
		case gerr != nil:
			return fmt.Errorf("re-read session %s: %w", current.GetName(), gerr)
		case fresh.GetUID() != uid || fresh.GetGeneration() != generation:
			return nil
		}
		current = fresh
		return err // the conflict: try again
	})
}

// withStatus returns a copy of u with o applied to its status, or nil when
// that changes nothing.
func withStatus(u *unstructured.Unstructured, o *observed) (*unstructured.Unstructured, error) {
	s, err := kubeapi.SessionFrom(u)
	if err != nil {
		return nil, err
	}
	st := s.Status
	old := st
	st.Phase, st.PodName, st.NodeName, st.URL, st.Message = o.phase, o.podName, o.nodeName, o.url, o.message
	st.ObservedGeneration = s.Generation
	cond := metav1.Condition{
		Type:               ConditionReady,
		Status:             metav1.ConditionFalse,
		Reason:             o.reason,
		Message:            o.message,
		ObservedGeneration: s.Generation,
	}
	if o.ready {
		cond.Status = metav1.ConditionTrue
		cond.Message = "the session's pod is running and ready"
	}
	st.Conditions = append([]metav1.Condition(nil), st.Conditions...)
	changed := meta.SetStatusCondition(&st.Conditions, cond)
	if !changed && st.Phase == old.Phase && st.PodName == old.PodName && st.NodeName == old.NodeName &&
		st.URL == old.URL && st.Message == old.Message && st.ObservedGeneration == old.ObservedGeneration {
		return nil, nil
	}

	owned, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	if err != nil {
		return nil, err
	}
	out := u.DeepCopy()
	status, _ := out.Object["status"].(map[string]any)
	if status == nil {
		status = map[string]any{}
	}
	for _, k := range []string{"phase", "podName", "nodeName", "url", "message", "observedGeneration", "conditions"} {
		if v, ok := owned[k]; ok {
			status[k] = v
		} else {
			delete(status, k)
		}
	}
	out.Object["status"] = status
	return out, nil
}
