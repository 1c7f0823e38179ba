package server

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

func TestTemplateCRUD(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{})

	resp, data := e.call("POST", "/api/templates", e.admin.Token, firefoxTemplate("firefox"))
	require.Equal(t, 201, resp.StatusCode, "%s", data)
	require.Equal(t, "/api/templates/firefox", resp.Header.Get("Location"))
	var created map[string]any
	require.NoError(t, json.Unmarshal(data, &created))
	want := firefoxTemplate("firefox")
	want["ports"] = []any{map[string]any{"name": "http", "container_port": 3000.0, "protocol": "TCP"}}
	for k, v := range want {
		got, _ := json.Marshal(created[k])
		exp, _ := json.Marshal(v)
		require.JSONEq(t, string(exp), string(got), "field %s", k)
	}
	require.NotEmpty(t, created["created_at"])

	// template.created went through the outbox, with who created it.
	events := outboxEvents(t, e.store, schemas.EventTemplateCreated)
	require.Len(t, events, 1)
	require.Equal(t, map[string]any{"template_id": "firefox", "display_name": "Firefox",
		"category": "Web Browsers", "created_by": "root-admin"}, events[0])

	// The resource is in the session namespace under the id.
	obj, err := e.kube.Dynamic.Resource(kubeapi.TemplateGVR).Namespace(e.kube.Namespace).Get(t.Context(), "firefox", metav1.GetOptions{})
	require.NoError(t, err)
	tpl, err := kubeapi.TemplateFrom(obj)
	require.NoError(t, err)
	require.Equal(t, "lscr.io/linuxserver/firefox:latest", tpl.Spec.BaseImage)
	require.Equal(t, &kubeapi.Resources{CPU: "500m", Memory: "1Gi"}, tpl.Spec.DefaultResources)

	// Same id again: 409.
	resp, data = e.call("POST", "/api/templates", e.admin.Token, firefoxTemplate("firefox"))
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	require.Equal(t, "CONFLICT", errorCode(t, data))

	// Users read; filters by category and tag.
	other := firefoxTemplate("vscode")
	other["category"], other["tags"] = "Development", []string{"editor"}
	e.callJSON("POST", "/api/templates", e.admin.Token, other, 201, nil)
	list := func(query string) []string {
		var out struct{ Templates []templateJSON }
		e.callJSON("GET", "/api/templates"+query, e.user.Token, nil, 200, &out)
		var ids []string
		for _, t := range out.Templates {
			ids = append(ids, t.ID)
		}
		return ids
	}
	require.Equal(t, []string{"firefox", "vscode"}, list(""))
	require.Equal(t, []string{"vscode"}, list("?category=development"))
	require.Equal(t, []string{"firefox"}, list("?tag=browser"))
	require.Empty(t, list("?tag=none"))
	resp, data = e.call("GET", "/api/templates?colour=red", e.user.Token, nil)
	require.Equal(t, 400, resp.StatusCode, "%s", data)
	var got templateJSON
	e.callJSON("GET", "/api/templates/firefox", e.user.Token, nil, 200, &got)
	require.Equal(t, "Firefox", got.DisplayName)
	e.callJSON("GET", "/api/templates/nope", e.user.Token, nil, 404, nil)
	// A template made with kubectl may have dots in its name.
	legacy := &kubeapi.Template{ObjectMeta: metav1.ObjectMeta{Name: "legacy.app"},
		Spec: kubeapi.TemplateSpec{DisplayName: "Legacy", BaseImage: "legacy:1"}}
	lu, err := legacy.Unstructured()
	require.NoError(t, err)
	_, err = e.kube.Dynamic.Resource(kubeapi.TemplateGVR).Namespace(e.kube.Namespace).Create(t.Context(), lu, metav1.CreateOptions{})
	require.NoError(t, err)
	e.callJSON("GET", "/api/templates/legacy.app", e.user.Token, nil, 200, &got)
	require.Equal(t, "Legacy", got.DisplayName)
	require.Equal(t, []string{"firefox", "legacy.app", "vscode"}, list(""))
	var fromLegacy sessionJSON
	e.callJSON("POST", "/api/sessions", e.user.Token, map[string]any{"template": "legacy.app"}, 202, &fromLegacy)
	require.Regexp(t, `^alice-legacy-app-[a-z2-7]{8}$`, fromLegacy.ID)
	e.callJSON("GET", "/api/templates/Not_A_Name", e.user.Token, nil, 404, nil)

	// PUT replaces the spec and keeps what the API does not carry.
	tpl.Spec.VolumeMounts = []corev1.VolumeMount{{Name: "home", MountPath: "/config"}}
	tpl.Spec.Env = append(tpl.Spec.Env, corev1.EnvVar{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}})
	u, err := tpl.Unstructured()
	require.NoError(t, err)
	_, err = e.kube.Dynamic.Resource(kubeapi.TemplateGVR).Namespace(e.kube.Namespace).Update(t.Context(), u, metav1.UpdateOptions{})
	require.NoError(t, err)
	e.callJSON("GET", "/api/templates/firefox", e.user.Token, nil, 200, &got)
	require.Equal(t, []envJSON{{Name: "TZ", Value: "UTC"}}, got.Env, "valueFrom entries are not shown")

	replaced := firefoxTemplate("")
	delete(replaced, "id")
	replaced["display_name"], replaced["env"], replaced["vnc"] = "Firefox ESR", []any{}, nil
	e.callJSON("PUT", "/api/templates/firefox", e.admin.Token, replaced, 200, &got)
	require.Equal(t, "Firefox ESR", got.DisplayName)
	require.Nil(t, got.VNC)
	obj, err = e.kube.Dynamic.Resource(kubeapi.TemplateGVR).Namespace(e.kube.Namespace).Get(t.Context(), "firefox", metav1.GetOptions{})
	require.NoError(t, err)
	tpl, err = kubeapi.TemplateFrom(obj)
	require.NoError(t, err)
	require.Equal(t, "Firefox ESR", tpl.Spec.DisplayName)
	require.Len(t, tpl.Spec.VolumeMounts, 1, "volumeMounts kept")
	require.Len(t, tpl.Spec.Env, 1, "the valueFrom entry is kept")
	require.Equal(t, "TOKEN", tpl.Spec.Env[0].Name)

	replaced["id"] = "chrome"
	resp, data = e.call("PUT", "/api/templates/firefox", e.admin.Token, replaced)
	require.Equal(t, 400, resp.StatusCode, "%s", data)
	require.Equal(t, "id", decodeEnvelope(t, data).Error.Details["field"])
	e.callJSON("PUT", "/api/templates/nope", e.admin.Token, firefoxTemplate("nope"), 404, nil)

	// DELETE: gone, then 404.
	e.callJSON("DELETE", "/api/templates/vscode", e.admin.Token, nil, 204, nil)
	e.callJSON("GET", "/api/templates/vscode", e.user.Token, nil, 404, nil)
	e.callJSON("DELETE", "/api/templates/vscode", e.admin.Token, nil, 404, nil)
	// One template.created per created template, none for the refused one.
	require.Len(t, outboxEvents(t, e.store, schemas.EventTemplateCreated), 2)
}

func TestTemplateDeleteInUse(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{})
	e.createTemplate("firefox")
	live := insertSession(t, e.apiBundle, e.user, "firefox", false)
	insertSession(t, e.apiBundle, e.other, "firefox", true) // ended: does not count
	insertSession(t, e.apiBundle, e.other, "vscode", false) // another template

	resp, data := e.call("DELETE", "/api/templates/firefox", e.admin.Token, nil)
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	env := decodeEnvelope(t, data)
	require.Equal(t, "CONFLICT", env.Error.Code)
	require.Contains(t, env.Error.Message, "1 live session")
	require.EqualValues(t, 1, env.Error.Details["live_sessions"])

	_, err := e.store.TransitionSession(context.Background(), live.ID, schemas.SessionTransition{
		State: kubeapi.StateTerminated, Phase: kubeapi.PhaseTerminated})
	require.NoError(t, err)
	e.callJSON("DELETE", "/api/templates/firefox", e.admin.Token, nil, 204, nil)
}

func TestTemplateValidation(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{})
	with := func(k string, v any) map[string]any {
		body := firefoxTemplate("ok")
		if v == nil {
			delete(body, k)
		} else {
			body[k] = v
		}
		return body
	}
	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"no id", with("id", nil), "id"},
		{"id not a DNS label", with("id", "Fire_Fox"), "id"},
		{"id too long", with("id", strings.Repeat("a", 64)), "id"},
		{"no display name", with("display_name", ""), "display_name"},
		{"no base image", with("base_image", nil), "base_image"},
		{"base image with spaces", with("base_image", "fire fox"), "base_image"},
		{"cpu not a quantity", with("default_resources", map[string]any{"cpu": "lots"}), "default_resources.cpu"},
		{"memory negative", with("default_resources", map[string]any{"memory": "-1Gi"}), "default_resources.memory"},
		{"limit not a quantity", with("default_resources", map[string]any{"limits": map[string]string{"cpu": "x"}}), "default_resources.limits.cpu"},
		{"port 0", with("ports", []any{map[string]any{"container_port": 0}}), "ports[0].container_port"},
		{"port too high", with("ports", []any{map[string]any{"container_port": 70000}}), "ports[0].container_port"},
		{"protocol", with("ports", []any{map[string]any{"container_port": 80, "protocol": "HTTP"}}), "ports[0].protocol"},
		{"port name", with("ports", []any{map[string]any{"container_port": 80, "name": "Web_UI"}}), "ports[0].name"},
		{"env name", with("env", []any{map[string]any{"name": "1X", "value": "y"}}), "env[0].name"},
		{"env valueFrom", with("env", []any{map[string]any{"name": "X", "valueFrom": map[string]any{}}}), "valueFrom"},
		{"env twice", with("env", []any{map[string]any{"name": "X"}, map[string]any{"name": "X"}}), "env[1].name"},
		{"vnc port", with("vnc", map[string]any{"port": 99999}), "vnc.port"},
		{"vnc protocol", with("vnc", map[string]any{"protocol": "spice"}), "vnc.protocol"},
		{"empty tag", with("tags", []string{""}), "tags[0]"},
		{"unknown field", with("colour", "red"), "colour"},
	}
	for _, c := range cases {
		resp, data := e.call("POST", "/api/templates", e.admin.Token, c.body)
		require.Equal(t, 400, resp.StatusCode, "%s: %s", c.name, data)
		env := decodeEnvelope(t, data)
		require.Equal(t, "VALIDATION_ERROR", env.Error.Code, c.name)
		require.Equal(t, c.field, env.Error.Details["field"], "%s: %s", c.name, data)
	}
	require.Empty(t, outboxEvents(t, e.store, schemas.EventTemplateCreated))
	var list struct{ Templates []templateJSON }
	e.callJSON("GET", "/api/templates", e.admin.Token, nil, 200, &list)
	require.Empty(t, list.Templates)
}

// TestKubeErrorInvalid: the apiserver's 422 (the CRD refused the object)
// becomes 400 VALIDATION_ERROR naming its field and carrying its message.
func TestKubeErrorInvalid(t *testing.T) {
	t.Parallel()
	err := apierrors.NewInvalid(schema.GroupKind{Group: kubeapi.Group, Kind: "Template"}, "x", field.ErrorList{
		field.Invalid(field.NewPath("spec", "baseImage"), "a b", `should match '^\S+$'`)})
	var e *Error
	require.ErrorAs(t, kubeError("template", err), &e)
	require.Equal(t, CodeValidation, e.Code)
	require.Equal(t, "base_image", e.Details["field"])
	require.Contains(t, e.Details["apiserver_message"], `Template.stream.space "x" is invalid`)

	require.ErrorAs(t, kubeError("template", apierrors.NewAlreadyExists(kubeapi.TemplateGVR.GroupResource(), "x")), &e)
	require.Equal(t, CodeConflict, e.Code)
	require.ErrorAs(t, kubeError("template", apierrors.NewServiceUnavailable("down")), &e)
	require.Equal(t, CodeUnavailable, e.Code)
}

// Without Kubernetes, templates and sessions answer 503; quotas work.
func TestSessionRoutesWithoutKube(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/templates"}, {"GET", "/api/templates/x"}, {"POST", "/api/sessions"},
		{"GET", "/api/sessions/x"}, {"DELETE", "/api/sessions/x"},
	} {
		resp, data := b.call(c.method, c.path, b.admin.Token, `{"template":"x"}`)
		require.Equal(t, 503, resp.StatusCode, "%s %s: %s", c.method, c.path, data)
		require.Equal(t, "UNAVAILABLE", errorCode(t, data))
	}
	b.callJSON("GET", "/api/me/quota", b.user.Token, nil, 200, nil)
}

// TestTemplateCreateUnreported: when template.created cannot be written,
// the Template resource is deleted again and the request fails, so no
// template exists that was never reported.
func TestTemplateCreateUnreported(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{})
	_, err := e.store.Pool.Exec(context.Background(), `
		CREATE FUNCTION refuse_template_events() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'outbox refused the event'; END $$;
		CREATE TRIGGER refuse_template_events BEFORE INSERT ON events
			FOR EACH ROW WHEN (NEW.type = 'template.created') EXECUTE FUNCTION refuse_template_events();`)
	require.NoError(t, err)

	resp, data := e.call("POST", "/api/templates", e.admin.Token, firefoxTemplate("firefox"))
	require.Equal(t, 500, resp.StatusCode, "%s", data)
	require.Equal(t, "INTERNAL", errorCode(t, data))
	_, err = e.kube.Dynamic.Resource(kubeapi.TemplateGVR).Namespace(e.kube.Namespace).Get(t.Context(), "firefox", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "the unreported template was removed: %v", err)
}
