package server

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// templateJSON is a Template as the API shows and takes it. The id is the
// Template object's name. Fields of the resource the API does not carry
// (volumeMounts, kasmvnc, env entries with valueFrom) are kept by PUT.
type templateJSON struct {
	ID               string         `json:"id"`
	DisplayName      string         `json:"display_name"`
	Description      string         `json:"description"`
	Category         string         `json:"category"`
	Icon             string         `json:"icon"`
	BaseImage        string         `json:"base_image"`
	DefaultResources *resourcesJSON `json:"default_resources"`
	Ports            []portJSON     `json:"ports"`
	Env              []envJSON      `json:"env"`
	VNC              *vncJSON       `json:"vnc"`
	Capabilities     []string       `json:"capabilities"`
	Tags             []string       `json:"tags"`
	CreatedAt        *time.Time     `json:"created_at,omitempty"` // read-only
}

// resourcesJSON is a template's default resources: the short form (cpu,
// memory: the limit, and the request unless requests say otherwise) or
// requests/limits.
type resourcesJSON struct {
	CPU      string            `json:"cpu,omitempty"`
	Memory   string            `json:"memory,omitempty"`
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}

type portJSON struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"container_port"`
	Protocol      string `json:"protocol,omitempty"`
}

type envJSON struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type vncJSON struct {
	Enabled    *bool  `json:"enabled,omitempty"`
	Port       int32  `json:"port,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Encryption *bool  `json:"encryption,omitempty"`
}

func toTemplateJSON(t *kubeapi.Template) templateJSON {
	sp := t.Spec
	out := templateJSON{ID: t.Name, DisplayName: sp.DisplayName, Description: sp.Description,
		Category: sp.Category, Icon: sp.Icon, BaseImage: sp.BaseImage,
		Ports: []portJSON{}, Env: []envJSON{}, Capabilities: nonNil(sp.Capabilities), Tags: nonNil(sp.Tags)}
	if !t.CreationTimestamp.IsZero() {
		c := t.CreationTimestamp.UTC()
		out.CreatedAt = &c
	}
	if r := sp.DefaultResources; r != nil {
		out.DefaultResources = &resourcesJSON{CPU: r.CPU, Memory: r.Memory, Requests: r.Requests, Limits: r.Limits}
	}
	for _, p := range sp.Ports {
		out.Ports = append(out.Ports, portJSON{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: string(p.Protocol)})
	}
	for _, e := range sp.Env {
		if e.ValueFrom == nil { // references to secrets and the like stay in the cluster
			out.Env = append(out.Env, envJSON{Name: e.Name, Value: e.Value})
		}
	}
	if v := sp.VNC; v != nil {
		out.VNC = &vncJSON{Enabled: v.Enabled, Port: v.Port, Protocol: v.Protocol, Encryption: v.Encryption}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// applyTo writes the API's fields into spec, keeping what the API does not
// carry: volume mounts, kasmvnc, and env entries with valueFrom that the
// request does not name.
func (in templateJSON) applyTo(spec *kubeapi.TemplateSpec) {
	spec.DisplayName, spec.Description, spec.Category = in.DisplayName, in.Description, in.Category
	spec.Icon, spec.BaseImage = in.Icon, in.BaseImage
	spec.DefaultResources = nil
	if r := in.DefaultResources; r != nil {
		spec.DefaultResources = &kubeapi.Resources{CPU: r.CPU, Memory: r.Memory, Requests: r.Requests, Limits: r.Limits}
	}
	spec.Ports = nil
	for _, p := range in.Ports {
		proto := corev1.Protocol(p.Protocol)
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		spec.Ports = append(spec.Ports, corev1.ContainerPort{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: proto})
	}
	var env []corev1.EnvVar
	for _, e := range in.Env {
		env = append(env, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	for _, e := range spec.Env {
		if e.ValueFrom != nil && !slices.ContainsFunc(in.Env, func(n envJSON) bool { return n.Name == e.Name }) {
			env = append(env, e)
		}
	}
	spec.Env = env
	spec.VNC = nil
	if v := in.VNC; v != nil {
		spec.VNC = &kubeapi.VNC{Enabled: v.Enabled, Port: v.Port, Protocol: v.Protocol, Encryption: v.Encryption}
	}
	spec.Capabilities = in.Capabilities
	spec.Tags = in.Tags
}

// validateTemplateID checks a template id: a DNS-1123 label, the name of
// the Template object.
func validateTemplateID(field, id string) error {
	if id == "" {
		return fieldError(field, "is required")
	}
	if errs := validation.IsDNS1123Label(id); len(errs) > 0 {
		return fieldError(field, "must be a DNS-1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit")
	}
	return nil
}

// validateTemplateRef checks a reference to an existing template: any
// object name (a DNS-1123 subdomain), as templates made with kubectl may
// have dots in their names.
func validateTemplateRef(field, id string) error {
	if id == "" {
		return fieldError(field, "is required")
	}
	if errs := validation.IsDNS1123Subdomain(id); len(errs) > 0 {
		return fieldError(field, "must be a template id: lowercase letters, digits, '-' or '.'")
	}
	return nil
}

// validate checks what the CRD checks and more, so clients get a message
// naming the field rather than the apiserver's.
func (in templateJSON) validate() error {
	if err := validateTemplateID("id", in.ID); err != nil {
		return err
	}
	return in.validateSpec()
}

// validateSpec checks every field but the id.
func (in templateJSON) validateSpec() error {
	checks := []struct {
		field    string
		value    string
		required bool
		max      int
	}{
		{"display_name", in.DisplayName, true, 256},
		{"description", in.Description, false, 4096},
		{"category", in.Category, false, 128},
		{"icon", in.Icon, false, 2048},
		{"base_image", in.BaseImage, true, 1024},
	}
	for _, c := range checks {
		if c.required && strings.TrimSpace(c.value) == "" {
			return fieldError(c.field, "is required")
		}
		if len(c.value) > c.max {
			return fieldError(c.field, fmt.Sprintf("must be at most %d bytes", c.max))
		}
	}
	for field, v := range map[string]string{"display_name": in.DisplayName, "category": in.Category} {
		if strings.ContainsAny(v, "\x00\r\n") {
			return fieldError(field, "must be on one line")
		}
	}
	if strings.IndexFunc(in.BaseImage, isSpace) >= 0 {
		return fieldError("base_image", "must be an image reference without spaces, e.g. lscr.io/linuxserver/firefox:latest")
	}
	if err := validateResources("default_resources", in.DefaultResources); err != nil {
		return err
	}
	if err := validatePorts(in.Ports); err != nil {
		return err
	}
	if err := validateEnv(in.Env); err != nil {
		return err
	}
	if v := in.VNC; v != nil {
		if v.Port != 0 && (v.Port < 1 || v.Port > 65535) {
			return fieldError("vnc.port", "must be a port from 1 to 65535")
		}
		if v.Protocol != "" && v.Protocol != "rfb" && v.Protocol != "websocket" {
			return fieldError("vnc.protocol", "must be rfb or websocket")
		}
	}
	if err := validateWords("capabilities", in.Capabilities, 32, 64); err != nil {
		return err
	}
	return validateWords("tags", in.Tags, 64, 63)
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}

// validateResources checks that every quantity parses and is not negative.
func validateResources(field string, r *resourcesJSON) error {
	if r == nil {
		return nil
	}
	check := func(name, v string) error {
		if v == "" {
			return nil
		}
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() < 0 {
			return fieldError(field+"."+name, fmt.Sprintf("%q is not a Kubernetes quantity such as 500m, 2 (cpu) or 512Mi, 2Gi (memory)", v))
		}
		return nil
	}
	if err := check("cpu", r.CPU); err != nil {
		return err
	}
	if err := check("memory", r.Memory); err != nil {
		return err
	}
	for _, m := range []struct {
		name string
		list map[string]string
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for name, v := range m.list {
			if errs := validation.IsQualifiedName(name); len(errs) > 0 {
				return fieldError(field+"."+m.name, fmt.Sprintf("%q is not a resource name such as cpu or memory", name))
			}
			if err := check(m.name+"."+name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func validatePorts(ports []portJSON) error {
	if len(ports) > 32 {
		return fieldError("ports", "must have at most 32 entries")
	}
	names := map[string]bool{}
	for i, p := range ports {
		f := fmt.Sprintf("ports[%d]", i)
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return fieldError(f+".container_port", "must be a port from 1 to 65535")
		}
		if p.Name != "" {
			if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
				return fieldError(f+".name", "must be at most 15 lowercase letters, digits or '-', with at least one letter")
			}
			if names[p.Name] {
				return fieldError(f+".name", "is used by another port")
			}
			names[p.Name] = true
		}
		switch p.Protocol {
		case "", "TCP", "UDP", "SCTP":
		default:
			return fieldError(f+".protocol", "must be TCP, UDP or SCTP")
		}
	}
	return nil
}

func validateEnv(env []envJSON) error {
	if len(env) > 256 {
		return fieldError("env", "must have at most 256 entries")
	}
	seen := map[string]bool{}
	for i, e := range env {
		f := fmt.Sprintf("env[%d].name", i)
		if errs := validation.IsEnvVarName(e.Name); len(errs) > 0 {
			return fieldError(f, "must be a variable name of letters, digits, '_', '-' or '.', not starting with a digit")
		}
		if seen[e.Name] {
			return fieldError(f, "is set twice")
		}
		seen[e.Name] = true
	}
	return nil
}

// validateWords checks a list of short labels (tags, capabilities).
func validateWords(field string, words []string, maxItems, maxLen int) error {
	if len(words) > maxItems {
		return fieldError(field, fmt.Sprintf("must have at most %d entries", maxItems))
	}
	for i, w := range words {
		if w == "" || len(w) > maxLen || strings.ContainsAny(w, "\x00\r\n") {
			return fieldError(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("must be 1 to %d characters on one line", maxLen))
		}
	}
	return nil
}
