package appliance

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// systemInfo is the body of GET /apis/v2beta1/system: what the box runs on and how much of
// its disk it uses. Sizes are computed on request; the walk stops when ctx ends.
func (a *Appliance) systemInfo(ctx context.Context) any {
	rt := map[string]any{"backend": a.runtime.Name()}
	if sec := a.cfg.Section("runtime", a.runtime.Name()); sec != nil {
		rt["settings"] = SectionView(sec) // as config show prints them, without secrets
	}
	storage := map[string]any{
		"data_dir":      a.cfg.DataDir,
		"objects_bytes": dirSize(ctx, filepath.Join(a.cfg.DataDir, "objects")),
		"logs_bytes":    dirSize(ctx, filepath.Join(a.cfg.DataDir, "logs")),
		"object_store":  a.cfg.ObjectStore,
		"datastore":     "bbolt",
	}
	if sec := a.cfg.Section("object_store", a.cfg.ObjectStore); sec != nil {
		storage["object_store_settings"] = SectionView(sec)
	}
	if a.cfg.DatastoreEndpoint == "" {
		storage["meta_bytes"] = fileSize(filepath.Join(a.cfg.DataDir, "meta.db"))
	} else {
		storage["datastore"] = RedactDSN(a.cfg.DatastoreEndpoint)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(a.cfg.DataDir, &st); err == nil {
		storage["free_bytes"] = st.Bavail * uint64(st.Bsize)
		storage["total_bytes"] = st.Blocks * uint64(st.Bsize)
	}
	out := map[string]any{
		"version": Version,
		"runtime": rt,
		"storage": storage,
		"cache":   map[string]any{"enabled": a.cfg.CacheEnabled},
	}
	if a.engine != nil {
		// Task slots held and reserved return to zero when no task runs.
		out["engine"] = map[string]any{"task_slots": a.engine.Slots()}
	}
	if a.wheels != nil {
		out["python"] = a.pythonInfo()
	}
	if a.s3 != nil {
		out["s3"] = map[string]any{"endpoint": a.s3.Endpoint(), "credentials": "kfp-box s3 credentials"}
	}
	if a.gpus != nil {
		g := map[string]any{"count": len(a.gpus.Devices())}
		if why := a.gpus.Unavailable(); why != "" {
			g["unavailable_reason"] = why
		}
		out["gpus"] = g
	}
	return out
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func dirSize(ctx context.Context, dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
