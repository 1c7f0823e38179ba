package kubeapi

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and Version of the StreamSpace custom resources.
const (
	Group   = "stream.space"
	Version = "v1alpha1"
)

// SessionGVR and TemplateGVR address the custom resources through the
// dynamic client.
var (
	SessionGVR  = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "sessions"}
	TemplateGVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "templates"}
)

// Desired states of a Session (spec.state).
const (
	StateRunning    = "running"
	StateHibernated = "hibernated"
	StateTerminated = "terminated"
)

// Observed phases of a Session (status.phase).
const (
	PhasePending    = "Pending"
	PhaseRunning    = "Running"
	PhaseHibernated = "Hibernated"
	PhaseFailed     = "Failed"
	PhaseTerminated = "Terminated"
)

// Labels the controller puts on a session's pod; the values are the
// Session's name, its user and its template.
const (
	LabelSession  = "stream.space/session"
	LabelUser     = "stream.space/user"
	LabelTemplate = "stream.space/template"
	LabelManaged  = "app.kubernetes.io/managed-by"
	ManagedBy     = "streamspace-enterprise"
)

// Session is one user's session of a streamed application.
type Session struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SessionSpec   `json:"spec"`
	Status SessionStatus `json:"status,omitempty"`
}

// SessionSpec is the desired state of a Session.
type SessionSpec struct {
	User               string     `json:"user"`
	Template           string     `json:"template"`
	State              string     `json:"state"`
	Resources          *Resources `json:"resources,omitempty"`
	PersistentHome     *bool      `json:"persistentHome,omitempty"`
	IdleTimeout        string     `json:"idleTimeout,omitempty"`
	MaxSessionDuration string     `json:"maxSessionDuration,omitempty"`
	Tags               []string   `json:"tags,omitempty"`
	// NodeName is the node the load balancer chose; empty lets the
	// Kubernetes scheduler choose.
	NodeName string `json:"nodeName,omitempty"`
}

// SessionStatus is the observed state of a Session, written by the
// controller.
type SessionStatus struct {
	Phase              string             `json:"phase,omitempty"`
	PodName            string             `json:"podName,omitempty"`
	NodeName           string             `json:"nodeName,omitempty"`
	URL                string             `json:"url,omitempty"`
	LastActivity       *metav1.Time       `json:"lastActivity,omitempty"`
	Message            string             `json:"message,omitempty"`
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	ResourceUsage      *ResourceUsage     `json:"resourceUsage,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
}

// ResourceUsage is the session's last measured usage.
type ResourceUsage struct {
	Memory string `json:"memory,omitempty"`
	CPU    string `json:"cpu,omitempty"`
}

// Resources are a session's (or a template's default) compute resources:
// the open-source short form (Memory, CPU: the limit) or requests/limits.
// Quantities are strings as Kubernetes writes them ("2Gi", "500m").
type Resources struct {
	Memory   string            `json:"memory,omitempty"`
	CPU      string            `json:"cpu,omitempty"`
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}
