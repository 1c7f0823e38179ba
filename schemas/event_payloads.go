package schemas

import "time"

// Event payloads: the "data" object of each event type. Fields are only ever
// added, never renamed, because receivers and stored events depend on them.

// SessionEventData is the data of every session.* event (the seed's example).
type SessionEventData struct {
	SessionID string `json:"session_id"`
	User      string `json:"user"`
	Template  string `json:"template"`
	State     string `json:"state"`
	Node      string `json:"node,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// UserEventData is the data of user.created and user.updated.
type UserEventData struct {
	UserID   string   `json:"user_id"`
	Username string   `json:"username"`
	Email    string   `json:"email,omitempty"`
	Role     string   `json:"role,omitempty"`
	Changed  []string `json:"changed,omitempty"`
}

// QuotaExceededData is the data of quota.exceeded.
type QuotaExceededData struct {
	User     string  `json:"user"`
	Resource string  `json:"resource"`
	Limit    float64 `json:"limit"`
	Used     float64 `json:"used"`
}

// PluginInstalledData is the data of plugin.installed.
type PluginInstalledData struct {
	Plugin      string `json:"plugin"`
	Version     string `json:"version"`
	InstalledBy string `json:"installed_by,omitempty"`
}

// TemplateCreatedData is the data of template.created.
type TemplateCreatedData struct {
	TemplateID  string `json:"template_id"`
	DisplayName string `json:"display_name,omitempty"`
	Category    string `json:"category,omitempty"`
	CreatedBy   string `json:"created_by,omitempty"`
}

// SecurityAlertData is the data of security.alert.
type SecurityAlertData struct {
	AlertID   string `json:"alert_id"`
	Kind      string `json:"kind"`
	Severity  string `json:"severity"`
	UserID    string `json:"user_id,omitempty"`
	IPAddress string `json:"ip_address,omitempty"`
	Message   string `json:"message"`
}

// ComplianceViolationData is the data of compliance.violation.
type ComplianceViolationData struct {
	ViolationID string `json:"violation_id"`
	PolicyID    string `json:"policy_id"`
	Framework   string `json:"framework,omitempty"`
	Severity    string `json:"severity"`
	Resource    string `json:"resource,omitempty"`
	Description string `json:"description"`
}

// ScalingTriggeredData is the data of scaling.triggered.
type ScalingTriggeredData struct {
	PolicyID     string  `json:"policy_id,omitempty"`
	Action       string  `json:"action"`
	FromReplicas int     `json:"from_replicas"`
	ToReplicas   int     `json:"to_replicas"`
	Metric       string  `json:"metric,omitempty"`
	Value        float64 `json:"value,omitempty"`
	Reason       string  `json:"reason"`
}

// NodeUnhealthyData is the data of node.unhealthy.
type NodeUnhealthyData struct {
	NodeName   string   `json:"node_name"`
	Reason     string   `json:"reason"`
	Conditions []string `json:"conditions,omitempty"`
}

// BackupCompletedData is the data of backup.completed.
type BackupCompletedData struct {
	BackupID  string        `json:"backup_id"`
	Target    string        `json:"target"`
	SizeBytes int64         `json:"size_bytes"`
	Duration  time.Duration `json:"duration_ns"`
}

// BackupFailedData is the data of backup.failed.
type BackupFailedData struct {
	BackupID string `json:"backup_id"`
	Target   string `json:"target"`
	Error    string `json:"error"`
}

// CostThresholdData is the data of cost.threshold.
type CostThresholdData struct {
	Scope     string  `json:"scope"`
	Threshold float64 `json:"threshold"`
	Current   float64 `json:"current"`
	Currency  string  `json:"currency"`
}
