package containerd

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kfp-box/kfp-box/runtime"
)

// NormalizeRef turns a short reference ("busybox", "python:3.11") into containerd's full
// name ("docker.io/library/busybox:latest"). References it cannot parse are returned as is.
func NormalizeRef(ref string) string {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return ref
	}
	return named.String()
}

// missingImage is the task error for an image that is not present and could not be pulled.
func missingImage(ref string, cause error) error {
	msg := fmt.Sprintf("image %q is not present; import it with kfp-box image import FILE, or pull it with kfp-box image pull %s", ref, ref)
	if cause != nil {
		msg += fmt.Sprintf(" (pull failed: %v)", cause)
	}
	return fmt.Errorf("%s: %w", msg, runtime.ErrImageNotFound)
}

// getImage finds ref under its full name, then as written.
func getImage(ctx context.Context, c *client.Client, ref string) (client.Image, error) {
	img, err := c.GetImage(ctx, NormalizeRef(ref))
	if errdefs.IsNotFound(err) && NormalizeRef(ref) != ref {
		img, err = c.GetImage(ctx, ref)
	}
	return img, err
}

// ensureImage applies the pull policy and returns the image unpacked for the snapshotter.
func (r *Runtime) ensureImage(ctx context.Context, ref string, policy runtime.PullPolicy) (client.Image, error) {
	img, err := getImage(ctx, r.client, ref)
	if err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	present := err == nil
	switch policy {
	case runtime.PullNever:
		if !present {
			return nil, missingImage(ref, nil)
		}
	case runtime.PullAlways:
		pulled, perr := r.pull(ctx, ref)
		switch {
		case perr == nil:
			img = pulled
		case present:
			// An air-gapped box keeps working with what was imported.
			r.log.Warn("pull failed; using the local image", "image", ref, "err", perr)
		default:
			return nil, missingImage(ref, perr)
		}
	default: // IfNotPresent
		if !present {
			pulled, perr := r.pull(ctx, ref)
			if perr != nil {
				return nil, missingImage(ref, perr)
			}
			img = pulled
		}
	}
	if err := r.unpack(ctx, img); err != nil {
		return nil, fmt.Errorf("image %q: unpack: %w", ref, err)
	}
	return img, nil
}

// pull fetches ref from its registry, bounded by Config.PullTimeout.
func (r *Runtime) pull(ctx context.Context, ref string) (client.Image, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PullTimeout)
	defer cancel()
	r.log.Info("pulling image", "image", ref)
	return r.client.Pull(ctx, NormalizeRef(ref), client.WithPullUnpack, client.WithPullSnapshotter(r.cfg.Snapshotter))
}

// unpack unpacks img for the snapshotter once per image digest per process.
func (r *Runtime) unpack(ctx context.Context, img client.Image) error {
	key := img.Target().Digest.String()
	r.unpackedMu.Lock()
	done := r.unpacked[key]
	r.unpackedMu.Unlock()
	if done {
		return nil
	}
	ok, err := img.IsUnpacked(ctx, r.cfg.Snapshotter)
	if err != nil {
		return err
	}
	if !ok {
		if err := img.Unpack(ctx, r.cfg.Snapshotter); err != nil {
			return err
		}
	}
	r.unpackedMu.Lock()
	r.unpacked[key] = true
	r.unpackedMu.Unlock()
	return nil
}

// ImageInfo describes one stored image.
type ImageInfo struct {
	// Name is the full reference.
	Name string
	// Digest is the manifest or index digest.
	Digest string
	// Size is the compressed size of the content for this platform, in bytes.
	Size int64
	// CreatedAt is when the image record was created.
	CreatedAt time.Time
}

// ImportImages reads a docker-archive (docker save) or OCI image-layout tarball from r,
// stores its images for the host platform and unpacks them for snapshotter. indexName names
// an OCI layout image whose index carries no name. It returns the imported names.
func ImportImages(ctx context.Context, c *client.Client, r io.Reader, snapshotter, indexName string) ([]string, error) {
	if snapshotter == "" {
		snapshotter = "overlayfs"
	}
	opts := []client.ImportOpt{
		client.WithImportPlatform(platforms.Default()),
		client.WithImageRefTranslator(ociRefTranslator(indexName)),
	}
	if indexName != "" {
		opts = append(opts, client.WithIndexName(NormalizeRef(indexName)))
	}
	imgs, err := c.Import(ctx, r, opts...)
	if err != nil {
		if badArchive(err) {
			return nil, fmt.Errorf("import: not a docker-archive or OCI layout tarball: %v: %w", err, runtime.ErrInvalid)
		}
		return nil, fmt.Errorf("import: %w", err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("import: the archive names no image; pass a name (--name REF): %w", runtime.ErrInvalid)
	}
	var names []string
	for _, i := range imgs {
		if slices.Contains(names, i.Name) {
			continue
		}
		img := client.NewImageWithPlatform(c, i, platforms.Default())
		if err := img.Unpack(ctx, snapshotter); err != nil {
			return names, fmt.Errorf("import: unpack %q: %w", i.Name, err)
		}
		names = append(names, i.Name)
	}
	return names, nil
}

// badArchive says whether an import failed on the archive itself (truncated, not a tar, not
// an image layout) rather than on containerd. containerd's importer returns plain errors, so
// its messages are matched.
func badArchive(err error) bool {
	var syn *json.SyntaxError
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) || errors.As(err, &syn) || errdefs.IsInvalidArgument(err) {
		return true
	}
	msg := err.Error()
	for _, m := range []string{"unrecognized image format", "missing index.json", "unsupported OCI version", "no target for symlink", "image config", "layer \"", "untar "} {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// ociRefTranslator names the images of an OCI layout from their
// org.opencontainers.image.ref.name: a full reference is normalized; a bare tag ("latest",
// as skopeo and buildah write) names nothing by itself, so it takes indexName when given.
func ociRefTranslator(indexName string) func(string) string {
	return func(ref string) string {
		if !strings.ContainsAny(ref, "/:@") {
			if indexName == "" {
				return ""
			}
			return NormalizeRef(indexName)
		}
		return NormalizeRef(ref)
	}
}

// ListImages returns the stored images, sorted by name.
func ListImages(ctx context.Context, c *client.Client) ([]ImageInfo, error) {
	imgs, err := c.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ImageInfo, 0, len(imgs))
	for _, img := range imgs {
		size, err := img.Size(ctx)
		if err != nil {
			size = -1
		}
		md := img.Metadata()
		out = append(out, ImageInfo{Name: img.Name(), Digest: img.Target().Digest.String(), Size: size, CreatedAt: md.CreatedAt})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveImage deletes ref (short or full name); content no other image uses is collected.
// A missing image wraps runtime.ErrImageNotFound.
func RemoveImage(ctx context.Context, c *client.Client, ref string) error {
	img, err := getImage(ctx, c, ref)
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("image %q: %w", ref, runtime.ErrImageNotFound)
	}
	if err != nil {
		return err
	}
	return c.ImageService().Delete(ctx, img.Name(), images.SynchronousDelete())
}

// PullProgress is called while a pull runs with the bytes fetched so far and the total
// known so far (both grow as manifests reveal layers).
type PullProgress func(done, total int64)

// PullImage fetches ref from its registry for the host platform and unpacks it. progress,
// when not nil, is called about every 200ms and once at the end.
func PullImage(ctx context.Context, c *client.Client, ref, snapshotter string, progress PullProgress) (string, error) {
	if snapshotter == "" {
		snapshotter = "overlayfs"
	}
	name := NormalizeRef(ref)
	var (
		mu   sync.Mutex
		seen = map[digest.Digest]int64{} // every descriptor the pull walks, with its size
	)
	handler := images.HandlerFunc(func(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		mu.Lock()
		seen[desc.Digest] = desc.Size
		mu.Unlock()
		return nil, nil
	})
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if progress == nil {
			return
		}
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mu.Lock()
			sizes := maps.Clone(seen)
			mu.Unlock()
			var done, total int64
			cs := c.ContentStore()
			for dg, size := range sizes {
				total += size
				if _, err := cs.Info(ctx, dg); err == nil {
					done += size
				}
			}
			if sts, err := cs.ListStatuses(ctx); err == nil {
				for _, st := range sts {
					done += st.Offset
				}
			}
			progress(min(done, total), total)
		}
	}()
	img, err := c.Pull(ctx, name, client.WithPullUnpack, client.WithPullSnapshotter(snapshotter), client.WithImageHandler(handler))
	close(stop)
	<-stopped
	if err != nil {
		if errdefs.IsNotFound(err) {
			return "", fmt.Errorf("pull %q: %v: %w", ref, err, runtime.ErrImageNotFound)
		}
		return "", fmt.Errorf("pull %q: %w", ref, err)
	}
	if progress != nil {
		size, _ := img.Size(ctx)
		progress(size, size)
	}
	return img.Name(), nil
}

var _ runtime.ImageStore = (*Runtime)(nil)

// Images lists the images in the runtime's namespace, sorted by name.
func (r *Runtime) Images(ctx context.Context) ([]runtime.Image, error) {
	imgs, err := ListImages(r.nsCtx(ctx), r.client)
	if err != nil {
		return nil, err
	}
	out := make([]runtime.Image, 0, len(imgs))
	for _, i := range imgs {
		out = append(out, runtime.Image(i))
	}
	return out, nil
}

// ImportImages imports a docker-archive or OCI layout tarball into the runtime's namespace
// and unpacks it for the runtime's snapshotter.
func (r *Runtime) ImportImages(ctx context.Context, rd io.Reader, name string) ([]string, error) {
	return ImportImages(r.nsCtx(ctx), r.client, rd, r.cfg.Snapshotter, name)
}

// RemoveImage deletes an image from the runtime's namespace.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	return RemoveImage(r.nsCtx(ctx), r.client, ref)
}

// PullImage pulls ref into the runtime's namespace and unpacks it.
func (r *Runtime) PullImage(ctx context.Context, ref string, progress func(done, total int64)) (string, error) {
	return PullImage(r.nsCtx(ctx), r.client, ref, r.cfg.Snapshotter, progress)
}
