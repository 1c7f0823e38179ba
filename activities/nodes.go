package activities

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// MaxSessionsAnnotation on a Node caps the sessions placed on it; without it
// (or with a value that is not a positive integer) the cap is the node's
// allocatable pods.
const MaxSessionsAnnotation = "stream.space/max-sessions"

// NodeReport is the cluster's nodes as GET /api/scaling/nodes shows them,
// and what autoscaling decides on.
type NodeReport struct {
	Nodes          []NodeLoad     `json:"nodes"` // sorted by name
	ClusterSummary ClusterSummary `json:"cluster_summary"`
}

// NodeLoad is one node: its usage, sessions, health and capacity.
type NodeLoad struct {
	NodeName string `json:"node_name"`
	// CPUPercent and MemoryPercent are usage (metrics.k8s.io) as a percentage
	// of allocatable, to one decimal; nil (JSON null) when unknown: no
	// metrics API, or no sample for this node yet.
	CPUPercent    *float64 `json:"cpu_percent"`
	MemoryPercent *float64 `json:"memory_percent"`
	// ActiveSessions counts the Sessions (in Kube.Namespace) whose
	// status.nodeName is this node and whose phase is Running or Pending.
	ActiveSessions int          `json:"active_sessions"`
	HealthStatus   string       `json:"health_status"` // NodeHealthy, NodeDegraded, NodeUnhealthy
	Capacity       NodeCapacity `json:"capacity"`
}

// NodeCapacity is what a node offers to sessions: its allocatable resources.
type NodeCapacity struct {
	MaxSessions int     `json:"max_sessions"` // MaxSessionsAnnotation, else allocatable pods
	CPUCores    float64 `json:"cpu_cores"`    // allocatable CPU, in cores
	MemoryGB    float64 `json:"memory_gb"`    // allocatable memory, in GiB, to one decimal
}

// ClusterSummary sums up the nodes.
type ClusterSummary struct {
	TotalNodes   int `json:"total_nodes"`
	HealthyNodes int `json:"healthy_nodes"` // health_status healthy
	// TotalSessions is the sum of the nodes' active sessions.
	TotalSessions int `json:"total_sessions"`
	// AvgCPU and AvgMemory are the mean of the nodes' percentages, over the
	// nodes that have one; nil when none has.
	AvgCPU    *float64 `json:"avg_cpu"`
	AvgMemory *float64 `json:"avg_memory"`
	// MetricsAvailable is false when metrics.k8s.io did not answer (not
	// installed, down, or forbidden): usage is then null everywhere, and the
	// rest of the report is still right.
	MetricsAvailable bool `json:"metrics_available"`
}

// NodeStatus reports every node of the cluster with its usage, active
// sessions, health and capacity. It needs the Kubernetes API (nodes and
// Sessions); metrics.k8s.io is optional (ClusterSummary.MetricsAvailable).
// It is also an activity: autoscaling decides on it.
func (k *Kube) NodeStatus(ctx context.Context) (NodeReport, error) {
	nodes, err := k.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return NodeReport{}, fmt.Errorf("list nodes: %w", err)
	}
	sessions, err := k.activeSessionsByNode(ctx)
	if err != nil {
		return NodeReport{}, err
	}
	usage, metricsErr := k.nodeUsage(ctx)
	if metricsErr != nil && ctx.Err() != nil {
		return NodeReport{}, ctx.Err()
	}
	return buildNodeReport(nodes.Items, sessions, usage, metricsErr == nil), nil
}

// activeSessionsByNode counts the Running and Pending Sessions by
// status.nodeName.
func (k *Kube) activeSessionsByNode(ctx context.Context) (map[string]int, error) {
	list, err := k.Dynamic.Resource(kubeapi.SessionGVR).Namespace(k.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list sessions in %s: %w", k.Namespace, err)
	}
	counts := map[string]int{}
	for i := range list.Items {
		s, err := kubeapi.SessionFrom(&list.Items[i])
		if err != nil {
			return nil, err
		}
		if s.Status.NodeName != "" && (s.Status.Phase == kubeapi.PhaseRunning || s.Status.Phase == kubeapi.PhasePending) {
			counts[s.Status.NodeName]++
		}
	}
	return counts, nil
}

func buildNodeReport(nodes []corev1.Node, sessions map[string]int, usage map[string]nodeUsage, metricsAvailable bool) NodeReport {
	rep := NodeReport{Nodes: make([]NodeLoad, 0, len(nodes)), ClusterSummary: ClusterSummary{MetricsAvailable: metricsAvailable}}
	var cpuSum, memSum float64
	var cpuN, memN int
	for i := range nodes {
		n := &nodes[i]
		alloc := n.Status.Allocatable
		load := NodeLoad{
			NodeName:       n.Name,
			ActiveSessions: sessions[n.Name],
			HealthStatus:   NodeHealthOf(n).Status,
			Capacity: NodeCapacity{
				MaxSessions: maxSessions(n),
				CPUCores:    float64(alloc.Cpu().MilliValue()) / 1000,
				MemoryGB:    roundTenth(float64(alloc.Memory().Value()) / (1 << 30)),
			},
		}
		if u, ok := usage[n.Name]; ok {
			load.CPUPercent = percent(u.cpu.MilliValue(), alloc.Cpu().MilliValue())
			load.MemoryPercent = percent(u.memory.Value(), alloc.Memory().Value())
		}
		if load.CPUPercent != nil {
			cpuSum += *load.CPUPercent
			cpuN++
		}
		if load.MemoryPercent != nil {
			memSum += *load.MemoryPercent
			memN++
		}
		if load.HealthStatus == NodeHealthy {
			rep.ClusterSummary.HealthyNodes++
		}
		rep.ClusterSummary.TotalSessions += load.ActiveSessions
		rep.Nodes = append(rep.Nodes, load)
	}
	slices.SortFunc(rep.Nodes, func(a, b NodeLoad) int { return strings.Compare(a.NodeName, b.NodeName) })
	rep.ClusterSummary.TotalNodes = len(rep.Nodes)
	if cpuN > 0 {
		rep.ClusterSummary.AvgCPU = floatPtr(roundTenth(cpuSum / float64(cpuN)))
	}
	if memN > 0 {
		rep.ClusterSummary.AvgMemory = floatPtr(roundTenth(memSum / float64(memN)))
	}
	return rep
}

// maxSessions is the node's MaxSessionsAnnotation if it is a positive
// integer, else its allocatable pods.
func maxSessions(n *corev1.Node) int {
	if v, err := strconv.Atoi(strings.TrimSpace(n.Annotations[MaxSessionsAnnotation])); err == nil && v > 0 {
		return v
	}
	return int(n.Status.Allocatable.Pods().Value())
}

// percent is used/total in percent to one decimal; nil if total is unknown.
func percent(used, total int64) *float64 {
	if total <= 0 {
		return nil
	}
	return floatPtr(roundTenth(float64(used) * 100 / float64(total)))
}

func roundTenth(v float64) float64 { return math.Round(v*10) / 10 }

func floatPtr(v float64) *float64 { return &v }

// nodeUsage is one node's sample from metrics.k8s.io.
type nodeUsage struct {
	cpu, memory resource.Quantity
}
