// Package sessionctl is the session controller: it turns each Session
// (stream.space/v1alpha1) in one namespace into a pod made from the Session's
// Template, and mirrors the pod back into the Session's status. It runs
// inside the worker process; a deployment whose cluster already runs the
// open-source StreamSpace controller simply does not start it.
//
// It is a plain client-go controller (no controller-runtime): dynamic shared
// informers on Sessions and Templates, a typed informer on the pods labelled
// kubeapi.LabelSession, all in Kube.Namespace, and a rate-limited work queue
// keyed by session name, drained by Config.Workers goroutines.
//
// # What a reconcile does
//
//   - spec.state running: make sure pod <session name> exists. It is built
//     from the Template (one container "session": baseImage, the effective
//     resources, the template's env and ports plus the stream port), labelled
//     with the session, user, template and managed-by labels (values made
//     valid label values), controlled by the Session (so deleting the Session
//     deletes the pod through the garbage collector), and bound to
//     spec.nodeName when the load balancer chose a node. The status follows
//     the pod: Pending, Running (url http://<podIP>:<stream port>), or Failed
//     (pod failed, template missing or invalid, pod refused).
//   - spec.state hibernated / terminated: delete the pod; the phase becomes
//     Hibernated / Terminated once it is gone (until then it stays what it
//     was, without URL, Ready=False with reason Stopping).
//
// The pod's restartPolicy is Always: a crashed app restarts in place. A pod
// that fails nevertheless (evicted, node lost) fails the session with the
// pod's reason and is kept for inspection; deleting it, or hibernating and
// waking the session, makes a new one. (A session StreamSpace started does
// not stay failed: worker/sessionwatch reports the Failed phase to its run,
// which fails the session and deletes the Session, pod included.)
//
// A pod deleted behind the controller's back is recreated (waking a
// hibernated session is the same path). A template change re-queues its
// sessions but never restarts a running pod: the template is read only when
// a pod is created. A session that failed because its template was missing
// is retried when the template appears.
//
// The status is written through the status subresource, only when it
// changed, with optimistic concurrency; the controller owns phase, podName,
// nodeName, url, message, observedGeneration and the "Ready" condition, and
// never writes spec, status.lastActivity (the lifecycle workflow's) or
// status.resourceUsage.
//
// # Persistent homes
//
// A Session with spec.persistentHome (the CRD's default) gets its user's
// home: before its pod is created, the controller makes sure the
// PersistentVolumeClaim kubeapi.HomeClaimName(user id) exists in the
// namespace (the id from the Session's kubeapi.LabelUserID label, else
// spec.user), creating it from Config.Home (StorageClass, else the
// cluster's default class; size) when missing. The claim has no owner
// reference, so it outlives sessions and hibernation; the pod mounts it at
// each of the template's volumeMounts, else at kubeapi.DefaultHomePath.
// Without a persistent home the template's volumeMounts are left out. The
// controller never deletes a claim; activities.DeleteHome does, on request.
package sessionctl
