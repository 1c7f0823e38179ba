package activities

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Health statuses of a node, as GET /api/scaling/nodes reports them.
const (
	NodeHealthy   = "healthy"   // Ready, schedulable, under no pressure
	NodeDegraded  = "degraded"  // Ready, but cordoned or under memory, disk or PID pressure
	NodeUnhealthy = "unhealthy" // not Ready: Ready is False or Unknown, or missing
)

// pressureConditions are the node conditions that degrade a Ready node when
// True.
var pressureConditions = []corev1.NodeConditionType{
	corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure,
}

// NodeHealth is a node's health judged from its conditions and spec.
type NodeHealth struct {
	// Status is NodeHealthy, NodeDegraded or NodeUnhealthy.
	Status string
	// Ready: the Ready condition is True. node.unhealthy is about this alone.
	Ready bool
	// Reason is the Ready condition's reason and message ("KubeletNotReady:
	// container runtime is down"), or why it is missing.
	Reason string
	// Conditions lists what is wrong, as "Type=Status": a Ready condition that
	// is not True ("Ready=False", "Ready=Unknown") and each pressure
	// condition that is True ("MemoryPressure=True"). Empty when nothing is.
	Conditions []string
	// Cordoned: spec.unschedulable.
	Cordoned bool
	// ReadySince is the Ready condition's lastTransitionTime (zero if none):
	// it orders observations of the same node made by different watchers.
	ReadySince time.Time
}

// NodeHealthOf judges node. A node that is not Ready is unhealthy whatever
// else holds; a Ready one is degraded when cordoned or under pressure.
func NodeHealthOf(node *corev1.Node) NodeHealth {
	h := NodeHealth{Reason: "the node reports no Ready condition", Cordoned: node.Spec.Unschedulable}
	var pressure bool
	var readyCond *corev1.NodeCondition
	for i := range node.Status.Conditions {
		c := &node.Status.Conditions[i]
		if c.Type == corev1.NodeReady {
			readyCond = c
		}
	}
	if readyCond == nil {
		h.Conditions = append(h.Conditions, "Ready=Unknown")
	} else {
		h.Ready = readyCond.Status == corev1.ConditionTrue
		h.ReadySince = readyCond.LastTransitionTime.Time
		h.Reason = conditionReason(readyCond)
		if !h.Ready {
			h.Conditions = append(h.Conditions, "Ready="+string(readyCond.Status))
		}
	}
	for _, t := range pressureConditions {
		for _, c := range node.Status.Conditions {
			if c.Type == t && c.Status == corev1.ConditionTrue {
				pressure = true
				h.Conditions = append(h.Conditions, string(t)+"=True")
			}
		}
	}
	switch {
	case !h.Ready:
		h.Status = NodeUnhealthy
	case h.Cordoned || pressure:
		h.Status = NodeDegraded
	default:
		h.Status = NodeHealthy
	}
	return h
}

func conditionReason(c *corev1.NodeCondition) string {
	switch {
	case c.Reason != "" && c.Message != "":
		return c.Reason + ": " + c.Message
	case c.Reason != "":
		return c.Reason
	case c.Message != "":
		return c.Message
	default:
		return "Ready=" + string(c.Status)
	}
}
