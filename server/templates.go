package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// Templates are Template custom resources in the session namespace; the API
// id is the object's name. Every signed-in user may read them; admins
// create, replace and delete them.
//
//	GET    /api/templates        ?category= ?tag=  {"templates":[…]}
//	POST   /api/templates        admin: 201, publishes template.created
//	GET    /api/templates/{id}
//	PUT    /api/templates/{id}   admin: replaces the spec
//	DELETE /api/templates/{id}   admin: 409 while live sessions use it

func (s *Server) templates() (dynamic.ResourceInterface, error) {
	k, err := s.kube()
	if err != nil {
		return nil, err
	}
	return k.Dynamic.Resource(kubeapi.TemplateGVR).Namespace(k.Namespace), nil
}

// loadTemplate loads a template by id; an id that cannot name one is 404.
func (s *Server) loadTemplate(ctx context.Context, id string) (*kubeapi.Template, error) {
	res, err := s.templates()
	if err != nil {
		return nil, err
	}
	if validateTemplateRef("id", id) != nil {
		return nil, Errorf(CodeNotFound, "no such template")
	}
	obj, err := res.Get(ctx, id, metav1.GetOptions{})
	if err != nil {
		return nil, kubeError("template", err)
	}
	return kubeapi.TemplateFrom(obj)
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) error {
	q, err := parseAdminListQuery(r, "category", "tag")
	if err != nil {
		return err
	}
	res, err := s.templates()
	if err != nil {
		return err
	}
	list, err := res.List(r.Context(), metav1.ListOptions{})
	if err != nil {
		return kubeError("template", err)
	}
	category, tag := q.Get("category"), q.Get("tag")
	out := make([]templateJSON, 0, len(list.Items))
	for i := range list.Items {
		t, err := kubeapi.TemplateFrom(&list.Items[i])
		if err != nil {
			s.deps.Logger.WarnContext(r.Context(), "skipping a template that does not decode", "err", err)
			continue
		}
		if category != "" && !strings.EqualFold(t.Spec.Category, category) {
			continue
		}
		if tag != "" && !slices.ContainsFunc(t.Spec.Tags, func(x string) bool { return strings.EqualFold(x, tag) }) {
			continue
		}
		out = append(out, toTemplateJSON(t))
	}
	slices.SortFunc(out, func(a, b templateJSON) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, map[string]any{"templates": out})
	return nil
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) error {
	t, err := s.loadTemplate(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toTemplateJSON(t))
	return nil
}

// createTemplate creates the Template, then publishes template.created. The
// resource lives in Kubernetes and the event in PostgreSQL, so they cannot
// share a transaction: if the publish fails the resource is deleted again
// and the request fails, so no template exists that was never reported.
func (s *Server) createTemplate(w http.ResponseWriter, r *http.Request) error {
	res, err := s.templates()
	if err != nil {
		return err
	}
	var in templateJSON
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	ctx := r.Context()
	t := &kubeapi.Template{ObjectMeta: metav1.ObjectMeta{Name: in.ID}}
	in.applyTo(&t.Spec)
	obj, err := t.Unstructured()
	if err != nil {
		return err
	}
	created, err := res.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return kubeError("template", err)
	}
	auditSetTarget(ctx, in.ID)
	p, _ := principalFrom(ctx)
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		_, err := schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventTemplateCreated, Data: schemas.TemplateCreatedData{
			TemplateID: in.ID, DisplayName: in.DisplayName, Category: in.Category, CreatedBy: p.Username}})
		return err
	})
	if err != nil {
		uid := created.GetUID()
		delErr := res.Delete(context.WithoutCancel(ctx), in.ID, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if delErr != nil && !apierrors.IsNotFound(delErr) {
			s.deps.Logger.ErrorContext(ctx, "template created but neither reported nor removed; delete it by hand",
				"template", in.ID, "publish_err", err, "delete_err", delErr)
		}
		return fmt.Errorf("publish template.created for %s: %w", in.ID, err)
	}
	out, err := kubeapi.TemplateFrom(created)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/templates/"+in.ID)
	writeJSON(w, http.StatusCreated, toTemplateJSON(out))
	return nil
}

// putTemplate replaces the template's spec with the body (an id in the body
// must be the path's: templates are not renamed).
func (s *Server) putTemplate(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	res, err := s.templates()
	if err != nil {
		return err
	}
	if validateTemplateRef("id", id) != nil {
		return Errorf(CodeNotFound, "no such template")
	}
	var in templateJSON
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.ID != "" && in.ID != id {
		return fieldError("id", "must be the id in the path (a template cannot be renamed)")
	}
	in.ID = id
	if err := in.validateSpec(); err != nil {
		return err
	}
	ctx := r.Context()
	var updated *kubeapi.Template
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj, err := res.Get(ctx, id, metav1.GetOptions{})
		if err != nil {
			return err
		}
		t, err := kubeapi.TemplateFrom(obj)
		if err != nil {
			return err
		}
		in.applyTo(&t.Spec)
		t.ManagedFields = nil // the apiserver keeps them
		next, err := t.Unstructured()
		if err != nil {
			return err
		}
		obj, err = res.Update(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		updated, err = kubeapi.TemplateFrom(obj)
		return err
	})
	if err != nil {
		return kubeError("template", err)
	}
	writeJSON(w, http.StatusOK, toTemplateJSON(updated))
	return nil
}

// deleteTemplate deletes a template no live session uses.
func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t, err := s.loadTemplate(ctx, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	k, err := s.kube()
	if err != nil {
		return err
	}
	res := k.Dynamic.Resource(kubeapi.TemplateGVR).Namespace(k.Namespace)
	uid := t.UID
	// Counted and deleted under the template's lock: a session being
	// created from it either counts or finds it gone (templateStillExists).
	n, err := s.deps.Store.DeleteTemplateIfUnused(ctx, k.Namespace, t.Name, func(ctx context.Context) error {
		err := res.Delete(ctx, t.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil {
			return kubeError("template", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n > 0 {
		return &Error{Code: CodeConflict,
			Message: fmt.Sprintf("template %s is used by %d live session(s); terminate them first", t.Name, n),
			Details: map[string]any{"live_sessions": n}}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// templateStillExists is CreateSession's check, under the template's lock,
// that the template the session was planned from has not been deleted (or
// replaced by another of the same name) since it was read.
func (s *Server) templateStillExists(k *activities.Kube, name string, uid types.UID) func(context.Context) error {
	return func(ctx context.Context) error {
		obj, err := k.Dynamic.Resource(kubeapi.TemplateGVR).Namespace(k.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && obj.GetUID() != uid) {
			return fieldError("template", fmt.Sprintf("there is no template %q (it was deleted meanwhile)", name))
		} else if err != nil {
			return kubeError("template", err)
		}
		return nil
	}
}
