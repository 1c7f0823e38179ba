package sessionctl

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// reconcile brings session name's pod in line with its spec.state and
// mirrors the outcome into its status. An error re-queues the session with
// back-off; everything else waits for the next event (pod, Session or
// Template) or the resync.
func (c *Controller) reconcile(ctx context.Context, name string) error {
	obj, exists, err := c.sessions.GetIndexer().GetByKey(c.ns + "/" + name)
	if err != nil || !exists {
		return err // deleted: the garbage collector removes its pod
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	s, err := kubeapi.SessionFrom(u)
	if err != nil {
		c.log.Error("unreadable session; skipped", "session", name, "err", err)
		return nil
	}
	if s.DeletionTimestamp != nil {
		return nil
	}
	pod, err := c.cachedPod(name)
	if err != nil {
		return err
	}

	var o *observed
	switch s.Spec.State {
	case kubeapi.StateRunning:
		o, err = c.ensureRunning(ctx, s, pod)
	case kubeapi.StateHibernated:
		o, err = c.ensureStopped(ctx, s, pod, kubeapi.PhaseHibernated, ReasonHibernated)
	case kubeapi.StateTerminated:
		o, err = c.ensureStopped(ctx, s, pod, kubeapi.PhaseTerminated, ReasonTerminated)
	default: // the CRD's enum refuses these
		o = failed(ReasonInvalidState, "unknown spec.state %q", s.Spec.State)
	}
	if o != nil {
		if werr := c.writeStatus(ctx, u, o); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// ensureRunning makes sure the session's pod exists and reports it.
func (c *Controller) ensureRunning(ctx context.Context, s *kubeapi.Session, pod *corev1.Pod) (*observed, error) {
	if pod == nil {
		created, o, err := c.createPod(ctx, s)
		if o != nil || err != nil {
			return o, err
		}
		pod = created
	}
	switch {
	case controlledBy(pod, s):
		return fromPod(pod), nil
	case staleFor(pod, s):
		// The pod of an earlier Session of this name: the garbage collector
		// would remove it; do it now so the new pod can take the name.
		if pod.DeletionTimestamp == nil {
			if err := c.deletePod(ctx, pod); err != nil {
				return nil, err
			}
		}
		return &observed{phase: kubeapi.PhasePending, reason: ReasonPodTerminating,
			message: fmt.Sprintf("waiting for pod %q of an earlier session of this name to be deleted", pod.Name)}, nil
	default:
		return failed(ReasonPodConflict, "pod %q already exists and does not belong to this session", pod.Name), nil
	}
}

// createPod creates the session's pod from its template. It returns the pod
// (the one already there if the cache had not seen it yet), or the Failed
// status when the template or the pod is unusable.
func (c *Controller) createPod(ctx context.Context, s *kubeapi.Session) (*corev1.Pod, *observed, error) {
	tpl, o := c.template(s.Spec.Template)
	if o != nil {
		return nil, o, nil
	}
	var home string
	if wantsHome(s) {
		var o *observed
		var err error
		if home, o, err = c.ensureHome(ctx, s); o != nil || err != nil {
			return nil, o, err
		}
	}
	pod, skipped, err := buildPod(s, tpl, home)
	if err != nil {
		return nil, failed(ReasonTemplateInvalid, "cannot build the pod from template %q: %v", tpl.Name, err), nil
	}
	if len(skipped) > 0 {
		c.log.Debug("template volumeMounts not mounted: the session has no persistent home", "session", s.Name, "template", tpl.Name, "volumes", skipped)
	}
	pods := c.kube.Clientset.CoreV1().Pods(c.ns)
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	switch {
	case err == nil:
		c.log.Info("created session pod", "session", s.Name, "node", pod.Spec.NodeName, "image", tpl.Spec.BaseImage, "home", home)
		return created, nil, nil
	case apierrors.IsAlreadyExists(err):
		live, gerr := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if gerr != nil {
			return nil, nil, fmt.Errorf("get pod %s: %w", pod.Name, gerr) // deleted in between: retry
		}
		return live, nil, nil
	case apierrors.IsInvalid(err):
		// Permanent until the Session or the Template changes, whose events
		// retry it.
		return nil, failed(ReasonPodRejected, "pod refused by the API server: %v", err), nil
	default: // quota, admission webhooks, the API server away: retry
		return nil, &observed{phase: kubeapi.PhasePending, reason: ReasonPodPending,
			message: fmt.Sprintf("cannot create pod yet: %v", err)}, fmt.Errorf("create pod %s: %w", pod.Name, err)
	}
}

// template returns the session's Template from the cache, or the Failed
// status saying why it cannot be used. A Template that appears later
// re-queues the session (enqueueTemplateSessions).
func (c *Controller) template(name string) (*kubeapi.Template, *observed) {
	obj, exists, err := c.templates.GetIndexer().GetByKey(c.ns + "/" + name)
	if err != nil || !exists {
		return nil, failed(ReasonTemplateNotFound, "template %q not found", name)
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, failed(ReasonTemplateInvalid, "template %q is unreadable", name)
	}
	tpl, err := kubeapi.TemplateFrom(u)
	if err != nil {
		return nil, failed(ReasonTemplateInvalid, "template %q is unreadable: %v", name, err)
	}
	if tpl.Status.Valid != nil && !*tpl.Status.Valid {
		msg := fmt.Sprintf("template %q is invalid", name)
		if tpl.Status.Message != "" {
			msg += ": " + tpl.Status.Message
		}
		return nil, failed(ReasonTemplateInvalid, "%s", msg)
	}
	return tpl, nil
}

// ensureStopped deletes the session's pod and reports phase once it is
// gone. A pod the session does not control is left alone.
func (c *Controller) ensureStopped(ctx context.Context, s *kubeapi.Session, pod *corev1.Pod, phase, reason string) (*observed, error) {
	if pod == nil && s.Status.Phase != phase {
		// The cache may lag behind a pod created a moment ago; ask before
		// declaring the session stopped.
		live, err := c.kube.Clientset.CoreV1().Pods(c.ns).Get(ctx, s.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			pod = live
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("get pod %s: %w", s.Name, err)
		}
	}
	if pod == nil || !controlledBy(pod, s) {
		return &observed{phase: phase, reason: reason}, nil
	}
	if pod.DeletionTimestamp == nil {
		if err := c.deletePod(ctx, pod); err != nil {
			return nil, err
		}
	}
	current := s.Status.Phase
	if current == "" {
		current = kubeapi.PhasePending
	}
	return &observed{phase: current, podName: pod.Name, nodeName: pod.Spec.NodeName, reason: ReasonStopping,
		message: fmt.Sprintf("waiting for pod %q to be deleted", pod.Name)}, nil
}

// deletePod deletes exactly this pod (by UID); already gone is fine.
func (c *Controller) deletePod(ctx context.Context, pod *corev1.Pod) error {
	uid := pod.UID
	err := c.kube.Clientset.CoreV1().Pods(c.ns).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid},
	})
	switch {
	case err == nil:
		c.log.Info("deleted session pod", "pod", pod.Name)
		return nil
	case apierrors.IsNotFound(err), apierrors.IsConflict(err): // gone, or another pod by now
		return nil
	}
	return fmt.Errorf("delete pod %s: %w", pod.Name, err)
}

// cachedPod is the pod named after the session, from the informer's cache.
func (c *Controller) cachedPod(name string) (*corev1.Pod, error) {
	obj, exists, err := c.pods.GetIndexer().GetByKey(c.ns + "/" + name)
	if err != nil || !exists {
		return nil, err
	}
	pod, _ := obj.(*corev1.Pod)
	return pod, nil
}
