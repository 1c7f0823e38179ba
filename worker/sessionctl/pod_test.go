package sessionctl

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

func TestLabelValue(t *testing.T) {
	long := strings.Repeat("a", 70)
	for in, want := range map[string]string{
		"alice":             "alice",
		"Alice.B_c-1":       "Alice.B_c-1",
		"alice@example.com": "alice-example.com-",
		"-alice-":           "alice-",
		"ü":                 "",
		"@@@":               "",
		long:                strings.Repeat("a", 54) + "-",
	} {
		got := labelValue(in)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("labelValue(%q) = %q: %v", in, got, errs)
		}
		if want == in && got != in || !strings.HasPrefix(got, want) {
			t.Errorf("labelValue(%q) = %q, want prefix %q", in, got, want)
		}
	}
	if a, b := labelValue("a@b"), labelValue("a-b"); a == b {
		t.Errorf("a@b and a-b share the label value %q", a)
	}
}

func TestWithStreamPort(t *testing.T) {
	str := func(ps []corev1.ContainerPort) string {
		var s []string
		for _, p := range ps {
			s = append(s, fmt.Sprintf("%s/%d/%s", p.Name, p.ContainerPort, p.Protocol))
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		ports  []corev1.ContainerPort
		stream int32
		want   string
	}{
		{nil, 5900, "stream/5900/TCP"},
		{[]corev1.ContainerPort{{Name: "vnc", ContainerPort: 3000}}, 3000, "vnc/3000/"},
		{[]corev1.ContainerPort{{Name: "vnc", ContainerPort: 3000, Protocol: corev1.ProtocolUDP}}, 3000, "vnc/3000/UDP stream/3000/TCP"},
		{[]corev1.ContainerPort{{Name: "stream", ContainerPort: 80}}, 5900, "stream/80/ /5900/TCP"},
	} {
		if got := str(withStreamPort(tc.ports, tc.stream)); got != tc.want {
			t.Errorf("withStreamPort(%v, %d) = %q, want %q", tc.ports, tc.stream, got, tc.want)
		}
	}
}

func TestBuildPod(t *testing.T) {
	s := &kubeapi.Session{
		ObjectMeta: metav1.ObjectMeta{Name: "s1", Namespace: "ns", UID: "uid-1"},
		Spec:       kubeapi.SessionSpec{User: "u@x", Template: "t", State: kubeapi.StateRunning, NodeName: "node-a"},
	}
	tpl := &kubeapi.Template{ObjectMeta: metav1.ObjectMeta{Name: "t"}, Spec: firefox()}
	pod, skipped, err := buildPod(s, tpl, "")
	if err != nil {
		t.Fatal(err)
	}
	if pod.Name != "s1" || pod.Namespace != "ns" || pod.Spec.NodeName != "node-a" || pod.Annotations[StreamPortAnnotation] != "5900" {
		t.Errorf("pod %s/%s node %s annotations %v", pod.Namespace, pod.Name, pod.Spec.NodeName, pod.Annotations)
	}
	if !slices.Equal(skipped, []string{"home"}) || len(pod.Spec.Containers[0].VolumeMounts) != 0 {
		t.Errorf("skipped %v, mounts %v", skipped, pod.Spec.Containers[0].VolumeMounts)
	}
	if !controlledBy(pod, s) || staleFor(pod, s) {
		t.Error("the pod is not controlled by its session")
	}
	other := *s
	other.UID = "uid-2"
	if controlledBy(pod, &other) || !staleFor(pod, &other) {
		t.Error("a new session of the same name controls the old pod")
	}
	// the template's env is copied, not shared
	pod.Spec.Containers[0].Env[0].Value = "changed"
	if tpl.Spec.Env[0].Value != "1000" {
		t.Error("buildPod shares the template's env")
	}

	s.Spec.Resources = &kubeapi.Resources{CPU: "lots"}
	if _, _, err := buildPod(s, tpl, ""); err == nil {
		t.Error("bad resources accepted")
	}
}

// With a home claim, each template volumeMount is mounted from it (path,
// subPath and readOnly kept); a template naming none gets the default path.
func TestBuildPodMountsHome(t *testing.T) {
	s := &kubeapi.Session{ObjectMeta: metav1.ObjectMeta{Name: "s1", Namespace: "ns", UID: "uid-1"},
		Spec: kubeapi.SessionSpec{User: "u", Template: "t", State: kubeapi.StateRunning}}
	spec := firefox()
	spec.VolumeMounts = append(spec.VolumeMounts, corev1.VolumeMount{Name: "downloads", MountPath: "/downloads", SubPath: "dl", ReadOnly: true})
	tpl := &kubeapi.Template{ObjectMeta: metav1.ObjectMeta{Name: "t"}, Spec: spec}
	pod, skipped, err := buildPod(s, tpl, "home-u")
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 0 || len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].Name != "home" ||
		pod.Spec.Volumes[0].PersistentVolumeClaim == nil || pod.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "home-u" {
		t.Fatalf("skipped %v, volumes %+v", skipped, pod.Spec.Volumes)
	}
	want := []corev1.VolumeMount{{Name: "home", MountPath: "/config"}, {Name: "home", MountPath: "/downloads", SubPath: "dl", ReadOnly: true}}
	if got := pod.Spec.Containers[0].VolumeMounts; !reflect.DeepEqual(got, want) {
		t.Errorf("mounts = %+v, want %+v", got, want)
	}
	if tpl.Spec.VolumeMounts[0].Name != "home" || tpl.Spec.VolumeMounts[1].Name != "downloads" {
		t.Error("buildPod changed the template's volumeMounts")
	}

	tpl.Spec.VolumeMounts = nil
	pod, _, err = buildPod(s, tpl, "home-u")
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Spec.Containers[0].VolumeMounts; len(got) != 1 || got[0].MountPath != kubeapi.DefaultHomePath || got[0].Name != "home" {
		t.Errorf("mounts without template mounts = %+v", got)
	}
}

func TestPodURL(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{StreamPortAnnotation: "3000"}},
		Status:     corev1.PodStatus{PodIP: "fd00::5"},
	}
	if got := podURL(pod); got != "http://[fd00::5]:3000" {
		t.Errorf("podURL = %q", got)
	}
	pod.Status.PodIP = ""
	if got := podURL(pod); got != "" {
		t.Errorf("podURL without IP = %q", got)
	}
}
