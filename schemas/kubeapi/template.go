package kubeapi

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Template is an application a Session can run.
type Template struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TemplateSpec   `json:"spec"`
	Status TemplateStatus `json:"status,omitempty"`
}

// TemplateStatus is written by whoever validates templates (the open-source
// controller does); StreamSpace Enterprise only reads it.
type TemplateStatus struct {
	Valid      *bool              `json:"valid,omitempty"`
	Message    string             `json:"message,omitempty"`
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// TemplateSpec describes a Template's container and how it is streamed.
type TemplateSpec struct {
	DisplayName      string                 `json:"displayName"`
	Description      string                 `json:"description,omitempty"`
	Category         string                 `json:"category,omitempty"`
	Icon             string                 `json:"icon,omitempty"`
	BaseImage        string                 `json:"baseImage"`
	DefaultResources *Resources             `json:"defaultResources,omitempty"`
	Ports            []corev1.ContainerPort `json:"ports,omitempty"`
	Env              []corev1.EnvVar        `json:"env,omitempty"`
	VolumeMounts     []corev1.VolumeMount   `json:"volumeMounts,omitempty"`
	VNC              *VNC                   `json:"vnc,omitempty"`
	KasmVNC          *KasmVNC               `json:"kasmvnc,omitempty"`
	Capabilities     []string               `json:"capabilities,omitempty"`
	Tags             []string               `json:"tags,omitempty"`
}

// VNC says how the app's desktop is streamed.
type VNC struct {
	Enabled    *bool  `json:"enabled,omitempty"`
	Port       int32  `json:"port,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Encryption *bool  `json:"encryption,omitempty"`
}

// KasmVNC is the older form of VNC, kept for existing templates.
type KasmVNC struct {
	Enabled *bool `json:"enabled,omitempty"`
	Port    int32 `json:"port,omitempty"`
}

// StreamPort is the container port the desktop is streamed from: vnc.port,
// else kasmvnc.port, else the first declared port, else 5900 (the CRD's
// default).
func (s TemplateSpec) StreamPort() int32 {
	switch {
	case s.VNC != nil && s.VNC.Port > 0:
		return s.VNC.Port
	case s.KasmVNC != nil && s.KasmVNC.Port > 0:
		return s.KasmVNC.Port
	case len(s.Ports) > 0:
		return s.Ports[0].ContainerPort
	}
	return 5900
}
