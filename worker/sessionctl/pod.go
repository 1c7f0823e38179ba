package sessionctl

import (
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// ContainerName is the name of the one container of a session pod.
const ContainerName = "session"

// StreamPortAnnotation on a session pod records the container port the
// desktop is streamed from (the template's, when the pod was made), so the
// URL does not depend on the template still existing or being unchanged.
const StreamPortAnnotation = "stream.space/stream-port"

// streamPortName names the port added for the stream when the template
// does not declare it.
const streamPortName = "stream"

// buildPod returns the pod of session s made from template t, mounting the
// home claim named home (none when empty), and the names of the template's
// volumeMounts it had to leave out.
//
// restartPolicy is Always: a session is a long-lived desktop, so a crashed
// app is restarted in place by the kubelet (same pod, IP, node and URL)
// instead of failing the session; the pod itself fails only when it is
// evicted or its node is lost. kwok's simulated pods simply stay Running.
//
// The only volume the controller provides is the user's persistent home:
// the template's volumeMounts say where the home goes (each is mounted from
// the home claim, keeping its mountPath, subPath and readOnly), or, when it
// names none, kubeapi.DefaultHomePath. Without a home every template
// volumeMount is left out (the container keeps the path from its image).
func buildPod(s *kubeapi.Session, t *kubeapi.Template, home string) (*corev1.Pod, []string, error) {
	resources, err := kubeapi.Effective(s.Spec.Resources, t.Spec.DefaultResources).Requirements()
	if err != nil {
		return nil, nil, err
	}
	streamPort := t.Spec.StreamPort()
	volumes, mounts, skipped := homeVolumes(t.Spec.VolumeMounts, home)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      s.Name,
			Namespace: s.Namespace,
			Labels: map[string]string{
				kubeapi.LabelSession:  labelValue(s.Name),
				kubeapi.LabelUser:     labelValue(s.Spec.User),
				kubeapi.LabelTemplate: labelValue(s.Spec.Template),
				kubeapi.LabelManaged:  kubeapi.ManagedBy,
			},
			Annotations: map[string]string{StreamPortAnnotation: strconv.Itoa(int(streamPort))},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion:         kubeapi.Group + "/" + kubeapi.Version,
				Kind:               "Session",
				Name:               s.Name,
				UID:                s.UID,
				Controller:         new(true),
				BlockOwnerDeletion: new(true),
			}},
		},
		Spec: corev1.PodSpec{
			// Placement chosen by the load balancer binds the pod directly,
			// bypassing the scheduler; empty lets the scheduler choose.
			NodeName:      s.Spec.NodeName,
			RestartPolicy: corev1.RestartPolicyAlways,
			// A desktop app has no business with the Kubernetes API, and the
			// namespace's service variables are noise in its environment.
			AutomountServiceAccountToken: new(false),
			EnableServiceLinks:           new(false),
			Containers: []corev1.Container{{
				Name:         ContainerName,
				Image:        t.Spec.BaseImage,
				Resources:    resources,
				Env:          deepCopyEnv(t.Spec.Env),
				Ports:        withStreamPort(t.Spec.Ports, streamPort),
				VolumeMounts: mounts,
			}},
			Volumes: volumes,
		},
	}
	return pod, skipped, nil
}

// homeVolumes is the pod's home volume (claim home) and the container's
// mounts of it, from the template's volumeMounts; without a home, the names
// of the mounts left out.
func homeVolumes(templateMounts []corev1.VolumeMount, home string) ([]corev1.Volume, []corev1.VolumeMount, []string) {
	if home == "" {
		var skipped []string
		for _, m := range templateMounts {
			skipped = append(skipped, m.Name)
		}
		return nil, nil, skipped
	}
	volumes := []corev1.Volume{{Name: kubeapi.HomeVolumeName, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: home}}}}
	if len(templateMounts) == 0 {
		return volumes, []corev1.VolumeMount{{Name: kubeapi.HomeVolumeName, MountPath: kubeapi.DefaultHomePath}}, nil
	}
	mounts := make([]corev1.VolumeMount, len(templateMounts))
	for i, m := range templateMounts {
		m.DeepCopyInto(&mounts[i])
		mounts[i].Name = kubeapi.HomeVolumeName
	}
	return volumes, mounts, nil
}

// withStreamPort copies ports and adds the stream port (TCP) unless it is
// declared already.
func withStreamPort(ports []corev1.ContainerPort, stream int32) []corev1.ContainerPort {
	out := make([]corev1.ContainerPort, 0, len(ports)+1)
	declared, nameTaken := false, false
	for _, p := range ports {
		out = append(out, p)
		if p.ContainerPort == stream && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
			declared = true
		}
		if p.Name == streamPortName {
			nameTaken = true
		}
	}
	if !declared {
		p := corev1.ContainerPort{ContainerPort: stream, Protocol: corev1.ProtocolTCP}
		if !nameTaken {
			p.Name = streamPortName
		}
		out = append(out, p)
	}
	return out
}

func deepCopyEnv(env []corev1.EnvVar) []corev1.EnvVar {
	if env == nil {
		return nil
	}
	out := make([]corev1.EnvVar, len(env))
	for i := range env {
		env[i].DeepCopyInto(&out[i])
	}
	return out
}

// controlledBy reports whether s (this very Session, by UID) controls pod.
func controlledBy(pod *corev1.Pod, s *kubeapi.Session) bool {
	ref := metav1.GetControllerOfNoCopy(pod)
	return ref != nil && ref.UID == s.UID
}

// staleFor reports whether pod belongs to an earlier Session of the same
// name (deleted and created again before the garbage collector removed
// its pod).
func staleFor(pod *corev1.Pod, s *kubeapi.Session) bool {
	ref := metav1.GetControllerOfNoCopy(pod)
	return ref != nil && ref.Kind == "Session" && isSessionAPIVersion(ref.APIVersion) && ref.Name == s.Name && ref.UID != s.UID
}

// podURL is where the session's stream is reached: http://<podIP>:<stream
// port>, empty while the pod has no IP.
func podURL(pod *corev1.Pod) string {
	if pod.Status.PodIP == "" {
		return ""
	}
	port := pod.Annotations[StreamPortAnnotation]
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		port = fmt.Sprint(firstPort(pod))
	}
	return "http://" + net.JoinHostPort(pod.Status.PodIP, port)
}

// firstPort is the stream port of a pod without the annotation: the one
// named "stream", else the first declared, else 5900.
func firstPort(pod *corev1.Pod) int32 {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == streamPortName {
				return p.ContainerPort
			}
		}
	}
	for _, c := range pod.Spec.Containers {
		if len(c.Ports) > 0 {
			return c.Ports[0].ContainerPort
		}
	}
	return 5900
}
