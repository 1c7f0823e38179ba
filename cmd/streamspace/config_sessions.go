package main

import (
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/worker/sessionctl"
	"github.com/streamspace/enterprise/workflows"
)

// SessionsConfig is how sessions run, shared by the server (quotas, defaults
// of new sessions) and the worker (the controller, wake-time quota checks).
type SessionsConfig struct {
	Namespace string        // SESSION_NAMESPACE: Sessions, Templates and their pods
	Quota     schemas.Quota // SESSION_QUOTA_*: the default per-user quota
	// StartTimeout bounds how long a session may take to reach Running.
	StartTimeout time.Duration
	// IdleTimeout and MaxDuration are the defaults of new sessions (0 = none).
	IdleTimeout time.Duration
	MaxDuration time.Duration
	// Controller runs the session controller in the worker; off when the
	// cluster already runs the open-source StreamSpace controller.
	Controller        bool
	ControllerWorkers int
	// Home is how the controller makes users' persistent home claims
	// (SESSION_HOME_STORAGE_CLASS, SESSION_HOME_SIZE).
	Home sessionctl.Home
}

func readSessions(e *envReader) SessionsConfig {
	ns := e.str("SESSION_NAMESPACE", activities.DefaultNamespace)
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		e.bad("SESSION_NAMESPACE", ns, errs[0])
	}
	return SessionsConfig{
		Namespace: ns,
		Quota: schemas.Quota{
			MaxSessions: e.integer("SESSION_QUOTA_MAX_SESSIONS", 5, 0, 10000),
			CPUMillis:   milli(quantity(e, "SESSION_QUOTA_CPU", "8")),
			MemoryBytes: value(quantity(e, "SESSION_QUOTA_MEMORY", "32Gi")),
		},
		StartTimeout:      e.duration("SESSION_START_TIMEOUT", workflows.DefaultSessionStartTimeout),
		IdleTimeout:       durationOrZero(e, "SESSION_IDLE_TIMEOUT", 0),
		MaxDuration:       durationOrZero(e, "SESSION_MAX_DURATION", 0),
		Controller:        e.boolean("SESSION_CONTROLLER", true),
		ControllerWorkers: e.integer("SESSION_CONTROLLER_WORKERS", 4, 1, 64),
		Home:              readHome(e),
	}
}

// readHome reads the home claims' StorageClass (empty: the cluster's
// default class) and size.
func readHome(e *envReader) sessionctl.Home {
	class := e.str("SESSION_HOME_STORAGE_CLASS", "")
	if errs := validation.IsDNS1123Subdomain(class); class != "" && len(errs) > 0 {
		e.bad("SESSION_HOME_STORAGE_CLASS", class, "must be a StorageClass name: "+errs[0])
	}
	def := sessionctl.DefaultHomeSize.String()
	v := e.str("SESSION_HOME_SIZE", def)
	size, err := resource.ParseQuantity(v)
	if err != nil || size.Sign() <= 0 {
		e.bad("SESSION_HOME_SIZE", v, "must be a positive Kubernetes quantity such as 10Gi")
		size = sessionctl.DefaultHomeSize
	}
	return sessionctl.Home{StorageClass: class, Size: size}
}

// quantity reads a Kubernetes quantity; "0" means no limit.
func quantity(e *envReader, name, def string) resource.Quantity {
	v := e.str(name, def)
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Sign() < 0 {
		e.bad(name, v, "must be a Kubernetes quantity such as 4, 500m or 16Gi (0 = no limit)")
		return resource.MustParse(def)
	}
	return q
}

// durationOrZero reads a duration where 0 means "none".
func durationOrZero(e *envReader, name string, def time.Duration) time.Duration {
	if v, ok := e.raw(name); ok && v == "0" {
		return 0
	}
	return e.duration(name, def)
}

func milli(q resource.Quantity) int64 { return q.MilliValue() }
func value(q resource.Quantity) int64 { return q.Value() }
