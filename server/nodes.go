package server

import (
	"errors"
	"net"
	"net/http"

	"github.com/go-chi/chi/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// nodeRoutes mounts the operators' view of the cluster's nodes. The caller
// puts it behind admin authorization.
//
//	GET /api/scaling/nodes   every node's usage, sessions, health and capacity
func (s *Server) nodeRoutes(r chi.Router) {
	r.Get("/api/scaling/nodes", handle(s.deps.Logger, s.listNodes))
}

// listNodes answers activities.NodeReport: the seed's nodes[] and
// cluster_summary, plus cluster_summary.metrics_available.
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	if s.deps.Kube == nil {
		return Errorf(CodeUnavailable, "Kubernetes is not configured (KUBECONFIG)")
	}
	rep, err := s.deps.Kube.NodeStatus(r.Context())
	if err != nil {
		return nodeStatusError(err)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// nodeStatusError makes an unreachable or overloaded Kubernetes API a 503;
// anything else is internal.
func nodeStatusError(err error) error {
	var netErr net.Error
	if apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTooManyRequests(err) || errors.As(err, &netErr) {
		return Errorf(CodeUnavailable, "the Kubernetes API is not reachable; try again")
	}
	return err
}
