package k8s

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/kfp-box/kfp-box/appliance/engine"
)

// badRequest writes a Kubernetes Status 400.
func badRequest(c *gin.Context, msg string) {
	c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"kind": "Status", "apiVersion": "v1", "metadata": gin.H{},
		"status": "Failure", "message": msg, "reason": "BadRequest", "code": http.StatusBadRequest})
}

// podSelector is a parsed labelSelector and fieldSelector.
type podSelector struct {
	labels labels.Selector
	fields fields.Selector
}

// ParseSelectors parses a list's labelSelector and fieldSelector as the API server does.
func ParseSelectors(labelSel, fieldSel string) (labels.Selector, fields.Selector, error) {
	ls, err := labels.Parse(labelSel)
	if err != nil {
		return nil, nil, fmt.Errorf("labelSelector %q: %v", labelSel, err)
	}
	fs, err := fields.ParseSelector(fieldSel)
	if err != nil {
		return nil, nil, fmt.Errorf("fieldSelector %q: %v", fieldSel, err)
	}
	for _, r := range fs.Requirements() {
		switch r.Field {
		case "metadata.name", "metadata.namespace", "status.phase", "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "status.podIP":
		default:
			return nil, nil, fmt.Errorf("field label not supported: %s", r.Field)
		}
	}
	return ls, fs, nil
}

func podFields(p *corev1.Pod) fields.Set {
	return fields.Set{
		"metadata.name": p.Name, "metadata.namespace": p.Namespace, "status.phase": string(p.Status.Phase),
		"spec.nodeName": p.Spec.NodeName, "spec.restartPolicy": string(p.Spec.RestartPolicy),
		"spec.serviceAccountName": p.Spec.ServiceAccountName, "status.podIP": p.Status.PodIP,
	}
}

func (sel podSelector) matches(p *corev1.Pod) bool {
	return sel.labels.Matches(labels.Set(p.Labels)) && sel.fields.Matches(podFields(p))
}

// selectPods lists the pods of ns ("" = every namespace) that match the request's selectors.
func (s *Store) selectPods(c *gin.Context, ns string) ([]*corev1.Pod, int64, podSelector, bool) {
	ls, fs, err := ParseSelectors(c.Query("labelSelector"), c.Query("fieldSelector"))
	if err != nil {
		badRequest(c, err.Error())
		return nil, 0, podSelector{}, false
	}
	sel := podSelector{ls, fs}
	if s.pods == nil || ns != "" && ns != s.ns {
		rev, err := s.kv.Revision(c.Request.Context())
		if err != nil {
			status(c, err)
			return nil, 0, sel, false
		}
		return nil, rev, sel, true
	}
	var q podQuery
	if v, ok := ls.RequiresExactMatch(LabelRunID); ok {
		q.runID = v
	}
	if v, ok := fs.RequiresExactMatch("metadata.name"); ok {
		q.name = v
	}
	all, rev, err := s.listPods(c.Request.Context(), s.ns, q)
	if err != nil {
		status(c, err)
		return nil, 0, sel, false
	}
	out := all[:0]
	for _, p := range all {
		if sel.matches(p) {
			out = append(out, p)
		}
	}
	return out, rev, sel, true
}

// listPodsHTTP serves GET .../pods: a PodList, a Table for kubectl, or a watch.
func (s *Store) listPodsHTTP(c *gin.Context, ns string) {
	if isWatch(c) {
		s.watchPods(c, ns)
		return
	}
	pods, rev, _, ok := s.selectPods(c, ns)
	if !ok {
		return
	}
	if wantsTable(c) {
		c.JSON(http.StatusOK, podTable(pods, rev, c.Query("includeObject")))
		return
	}
	items := make([]corev1.Pod, len(pods))
	for i, p := range pods {
		items[i] = *p
	}
	c.JSON(http.StatusOK, &corev1.PodList{
		TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
		ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatInt(rev, 10)},
		Items:    items,
	})
}

func (s *Store) getPodHTTP(c *gin.Context, ns, name string) {
	p, err := s.getPod(c.Request.Context(), ns, name)
	if err != nil {
		status(c, err)
		return
	}
	if wantsTable(c) {
		c.JSON(http.StatusOK, podTable([]*corev1.Pod{p}, 0, c.Query("includeObject")))
		return
	}
	c.JSON(http.StatusOK, p)
}

// deletePodHTTP kills the running attempt behind a pod; the task fails and its retry
// policy applies. Pods of attempts that are over stay with their run.
func (s *Store) deletePodHTTP(c *gin.Context, ns, name string) {
	p, err := s.getPod(c.Request.Context(), ns, name)
	if err != nil {
		status(c, err)
		return
	}
	if s.pods.src.Delete == nil {
		status(c, fmt.Errorf("pods cannot be deleted on this box: %w", ErrConflict))
		return
	}
	// dryRun=All (kubectl delete --dry-run=server) answers the pod and kills nothing.
	ctx, err := deleteContext(c)
	if err != nil {
		status(c, err)
		return
	}
	if isDryRun(ctx) {
		c.JSON(http.StatusOK, p)
		return
	}
	attempt, _ := strconv.Atoi(p.Labels[LabelAttempt])
	err = s.pods.src.Delete(c.Request.Context(), p.Labels[LabelRunID], p.Labels[LabelExecution], attempt)
	if errors.Is(err, engine.ErrNotRunning) {
		status(c, fmt.Errorf("pod %q: %v; the pods of finished attempts stay with their run (delete the run to remove them): %w", name, err, ErrConflict))
		return
	}
	if err != nil {
		status(c, err)
		return
	}
	now := metav1.Now()
	p.DeletionTimestamp = &now
	c.JSON(http.StatusOK, p)
}

// events serves an empty EventList: the box records no events (kubectl describe lists them).
func (s *Store) events(c *gin.Context) {
	if isWatch(c) {
		badRequest(c, "events cannot be watched on this box")
		return
	}
	rev, err := s.kv.Revision(c.Request.Context())
	if err != nil {
		status(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"kind": "EventList", "apiVersion": "v1",
		"metadata": gin.H{"resourceVersion": strconv.FormatInt(rev, 10)}, "items": []any{}})
}

func isWatch(c *gin.Context) bool {
	w := c.Query("watch")
	return w == "1" || w == "true"
}

// wantsTable says whether the client asked for a meta.k8s.io Table (kubectl get does).
func wantsTable(c *gin.Context) bool {
	for _, part := range strings.Split(c.GetHeader("Accept"), ",") {
		if strings.Contains(part, "as=Table") && strings.Contains(part, "g=meta.k8s.io") && strings.Contains(part, "application/json") {
			return true
		}
	}
	return false
}

var podColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "Name of the pod: the task attempt"},
	{Name: "Ready", Type: "string", Description: "Ready containers / containers"},
	{Name: "Status", Type: "string", Description: "The pod's phase or the reason it ended"},
	{Name: "Restarts", Type: "string", Description: "Container restarts (always 0: a retry is a new pod)"},
	{Name: "Age", Type: "string", Description: "Time since the attempt was queued"},
	{Name: "IP", Type: "string", Priority: 1, Description: "The pod's IP (tasks share the host's network)"},
	{Name: "Node", Type: "string", Priority: 1, Description: "The box's host name"},
	{Name: "Nominated Node", Type: "string", Priority: 1, Description: "Always <none>"},
	{Name: "Readiness Gates", Type: "string", Priority: 1, Description: "Always <none>"},
}

// podReason is what kubectl shows in STATUS.
func podReason(p *corev1.Pod) string {
	reason := string(p.Status.Phase)
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			reason = cs.State.Waiting.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
			reason = cs.State.Terminated.Reason
		}
	}
	if p.DeletionTimestamp != nil {
		reason = "Terminating"
	}
	return reason
}

// podTable is pods as a meta.k8s.io/v1 Table, with each row's object as PartialObjectMetadata
// (includeObject=Metadata, the default), the whole pod (Object) or nothing (None).
func podTable(pods []*corev1.Pod, rev int64, include string) *metav1.Table {
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"}, ColumnDefinitions: podColumns, Rows: []metav1.TableRow{}}
	if rev > 0 {
		t.ResourceVersion = strconv.FormatInt(rev, 10)
	}
	now := time.Now()
	for _, p := range pods {
		ready := 0
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
		}
		row := metav1.TableRow{Cells: []any{
			p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), podReason(p), "0",
			duration.HumanDuration(now.Sub(p.CreationTimestamp.Time)), p.Status.PodIP, p.Spec.NodeName, "<none>", "<none>",
		}}
		switch include {
		case "None":
		case "Object":
			raw, _ := json.Marshal(p)
			row.Object = runtime.RawExtension{Raw: raw}
		default:
			raw, _ := json.Marshal(&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"}, ObjectMeta: p.ObjectMeta})
			row.Object = runtime.RawExtension{Raw: raw}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}
