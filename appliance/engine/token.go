package engine

import (
	"os"
	"path/filepath"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// RunTokenPath is where a task finds its run's token: the path where KFP mounts a pod's
// service account token, which kfp.client.ServiceAccountTokenVolumeCredentials reads.
const RunTokenPath = "/var/run/secrets/kubeflow/pipelines/token"

// giveRunToken hands a task its run's token, never the box's own: a file in the attempt's
// work directory (made the task user's by confine) mounted read-only at RunTokenPath,
// with KF_PIPELINES_SA_TOKEN_PATH and KF_PIPELINES_ENDPOINT set as KFP's clients read them.
// The token reads the API while its run is live, and dies with it.
func (e *Engine) giveRunToken(ts *runtime.TaskSpec, x *meta.Execution) error {
	if e.cfg.RunToken == nil {
		return nil
	}
	dir := e.workDir(x)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte(e.cfg.RunToken(x.RunID)), 0o400); err != nil {
		return err
	}
	ts.Mounts = append(ts.Mounts, runtime.Mount{Source: file, Target: RunTokenPath, ReadOnly: true})
	ts.Env = append(ts.Env, "KF_PIPELINES_SA_TOKEN_PATH="+RunTokenPath)
	if e.cfg.APIURL != nil {
		if u := e.cfg.APIURL(); u != "" {
			ts.Env = append(ts.Env, "KF_PIPELINES_ENDPOINT="+u)
		}
	}
	return nil
}
