package k8s

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Tables for kubectl get of claims and namespaces, with the API server's columns.

var pvcColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "Name of the claim"},
	{Name: "Status", Type: "string", Description: "Bound, or Terminating while tasks hold it after a delete"},
	{Name: "Volume", Type: "string", Description: "The volume bound to the claim: its directory on the box"},
	{Name: "Capacity", Type: "string", Description: "The storage the claim requests"},
	{Name: "Access Modes", Type: "string", Description: "The claim's access modes"},
	{Name: "StorageClass", Type: "string", Description: "The storage class the claim names"},
	{Name: "VolumeAttributesClass", Type: "string", Description: "Always <unset>"},
	{Name: "Age", Type: "string", Description: "Time since the claim was created"},
	{Name: "VolumeMode", Type: "string", Priority: 1, Description: "Filesystem"},
}

var namespaceColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "Name of the namespace"},
	{Name: "Status", Type: "string", Description: "Active, or Terminating while its objects are deleted"},
	{Name: "Age", Type: "string", Description: "Time since the namespace was created"},
}

func hasTable(resource string) bool {
	return resource == "persistentvolumeclaims" || resource == "namespaces"
}

func age(created string, now time.Time) string {
	t, err := time.Parse(time.RFC3339, created)
	if err != nil {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}

// accessModesShort is kubectl's way of writing access modes: RWO,ROX,RWX,RWOP.
func accessModesShort(modes []corev1.PersistentVolumeAccessMode) string {
	short := map[corev1.PersistentVolumeAccessMode]string{corev1.ReadWriteOnce: "RWO", corev1.ReadOnlyMany: "ROX",
		corev1.ReadWriteMany: "RWX", corev1.ReadWriteOncePod: "RWOP"}
	var out []string
	for _, m := range modes {
		out = append(out, short[m])
	}
	return strings.Join(out, ",")
}

// objectTable is claims or namespaces as a meta.k8s.io/v1 Table, each row's object as
// PartialObjectMetadata (includeObject=Metadata, the default), the object, or nothing.
func objectTable(resource string, items []*Object, rev int64, include string) *metav1.Table {
	cols := namespaceColumns
	if resource == "persistentvolumeclaims" {
		cols = pvcColumns
	}
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"}, ColumnDefinitions: cols, Rows: []metav1.TableRow{}}
	if rev > 0 {
		t.ResourceVersion = formatRev(rev)
	}
	now := time.Now()
	for _, o := range items {
		var cells []any
		if resource == "persistentvolumeclaims" {
			var spec corev1.PersistentVolumeClaimSpec
			var st corev1.PersistentVolumeClaimStatus
			_ = json.Unmarshal(o.Spec, &spec)
			_ = json.Unmarshal(o.Status, &st)
			phase := string(st.Phase)
			if o.Metadata.DeletionTimestamp != "" {
				phase = "Terminating"
			}
			capacity := ""
			if q, ok := st.Capacity[corev1.ResourceStorage]; ok {
				capacity = q.String()
			}
			sc := ""
			if spec.StorageClassName != nil {
				sc = *spec.StorageClassName
			}
			cells = []any{o.Metadata.Name, phase, spec.VolumeName, capacity, accessModesShort(st.AccessModes), sc, "<unset>",
				age(o.Metadata.CreationTimestamp, now), "Filesystem"}
		} else {
			var st corev1.NamespaceStatus
			_ = json.Unmarshal(o.Status, &st)
			cells = []any{o.Metadata.Name, string(st.Phase), age(o.Metadata.CreationTimestamp, now)}
		}
		row := metav1.TableRow{Cells: cells}
		switch include {
		case "None":
		case "Object":
			raw, _ := json.Marshal(o)
			row.Object = runtime.RawExtension{Raw: raw}
		default:
			ct, _ := time.Parse(time.RFC3339, o.Metadata.CreationTimestamp)
			pm := metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
				ObjectMeta: metav1.ObjectMeta{Name: o.Metadata.Name, Namespace: o.Metadata.Namespace, UID: typesUID(o.Metadata.UID),
					ResourceVersion: o.Metadata.ResourceVersion, CreationTimestamp: metav1.NewTime(ct), Labels: o.Metadata.Labels,
					Annotations: o.Metadata.Annotations, Finalizers: o.Metadata.Finalizers}}
			if dt, err := time.Parse(time.RFC3339, o.Metadata.DeletionTimestamp); err == nil {
				d := metav1.NewTime(dt)
				pm.DeletionTimestamp = &d
			}
			raw, _ := json.Marshal(&pm)
			row.Object = runtime.RawExtension{Raw: raw}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func formatRev(rev int64) string { return strconv.FormatInt(rev, 10) }

func typesUID(s string) types.UID { return types.UID(s) }
