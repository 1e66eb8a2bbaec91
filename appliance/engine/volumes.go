package engine

import "context"

// Volumes serves the PersistentVolumeClaims of the runs' namespace to tasks: kfp-kubernetes'
// mount_pvc, CreatePVC and DeletePVC. The box's Kubernetes subset implements it
// (appliance/k8s), where a claim is an object backed by a directory; the engine only asks
// for directories and says which task attempts use which claims, so that a claim in use is
// not deleted under them. Claim names are checked there, once, for every path that names a
// claim.
type Volumes interface {
	// ResolveVolume returns the directory of claim name, or why a task cannot mount it
	// (no such claim, it is being deleted, the name is not valid).
	ResolveVolume(ctx context.Context, name string) (string, error)
	// AcquireVolumes records holder (a task attempt's runtime id) as using the claims
	// until ReleaseVolumes(holder). It fails, acquiring none, when a claim is gone, is
	// being deleted, or already uses all the storage it requests.
	AcquireVolumes(ctx context.Context, holder string, names []string) error
	// ReleaseVolumes ends holder's use of its claims; a claim deleted while in use goes
	// when its last holder releases it.
	ReleaseVolumes(holder string)
	// CreateVolume makes a claim (CreatePVC).
	CreateVolume(ctx context.Context, c VolumeClaim) error
	// DeleteVolume deletes a claim (DeletePVC); one in use goes when its tasks end, and
	// one that does not exist is not an error.
	DeleteVolume(ctx context.Context, name string) error
}

// VolumeClaim is what kfp-kubernetes' CreatePVC asks for.
type VolumeClaim struct {
	Name         string
	AccessModes  []string
	Size         string // a Kubernetes quantity: "5Gi"
	StorageClass string
	VolumeName   string // a PersistentVolume to bind to (the box has none)
	Annotations  map[string]string
	// Run is the run whose task makes the claim: making it again for the same run (a
	// step prepared again after a restart) succeeds.
	Run string
}
