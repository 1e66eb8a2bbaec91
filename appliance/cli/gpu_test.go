package cli

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// runCLI runs the root command with args and returns stdout and the error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func gpuServer(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != gpuListPath || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

const twoGPUs = `{"gpus":[
 {"index":0,"uuid":"GPU-a","name":"NVIDIA A100-SXM4-40GB","memory_total_bytes":42949672960,"memory_used_bytes":1073741824,
  "utilization_percent":37,"mig_enabled":false,"healthy":true,"driver_version":"550.54.15","cuda_version":"12.4","assigned_to":"exec-1"},
 {"index":1,"uuid":"GPU-b","name":"NVIDIA A100-SXM4-40GB","memory_total_bytes":42949672960,"memory_used_bytes":0,
  "utilization_percent":null,"mig_enabled":true,"healthy":false,"health_reason":"GPU is lost","driver_version":"550.54.15","cuda_version":"12.4","assigned_to":""}]}`

func TestGPUList(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		args   []string
		want   []string
		errHas string
	}{
		{
			name: "table", status: 200, body: twoGPUs,
			want: []string{
				"driver 550.54.15, CUDA 12.4",
				"INDEX  NAME",
				"0      NVIDIA A100-SXM4-40GB  GPU-a  1.0 GiB / 40.0 GiB  37%   off  ok",
				"exec-1",
				"1      NVIDIA A100-SXM4-40GB  GPU-b  0.0 GiB / 40.0 GiB  -     on   unhealthy (GPU is lost)  -",
			},
		},
		{
			name: "no gpus", status: 200,
			body: `{"gpus":[],"unavailable_reason":"NVIDIA driver library libnvidia-ml.so.1 not found (no NVIDIA driver installed?)"}`,
			want: []string{"no GPUs found: NVIDIA driver library libnvidia-ml.so.1 not found (no NVIDIA driver installed?)\n"},
		},
		{
			name: "json", status: 200, body: twoGPUs, args: []string{"-o", "json"},
			want: []string{twoGPUs},
		},
		{
			name: "server error", status: 503, body: `{"code":14,"message":"engine stopped"}`,
			errHas: "503 Service Unavailable: engine stopped",
		},
		{
			name: "no endpoint", status: 404, body: `{"code":5,"message":"not found"}`,
			errHas: "has no GPU endpoint",
		},
		{
			name: "bad output flag", status: 200, body: twoGPUs, args: []string{"--output", "yaml"},
			errHas: "want table or json",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := gpuServer(t, tt.status, tt.body)
			out, err := runCLI(t, append([]string{"gpu", "list", "--server", srv.URL}, tt.args...)...)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want one containing %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestGPUListServerFromEnv(t *testing.T) {
	srv := gpuServer(t, 200, `{"gpus":[],"unavailable_reason":"NVML reports no GPUs on this machine"}`)
	t.Setenv("KFPBOX_SERVER", srv.URL)
	out, err := runCLI(t, "gpu", "list")
	if err != nil {
		t.Fatal(err)
	}
	if out != "no GPUs found: NVML reports no GPUs on this machine\n" {
		t.Fatalf("output %q", out)
	}
}

func TestGPUListUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := runCLI(t, "gpu", "list", "--server", url)
	if err == nil || !strings.Contains(err.Error(), "cannot reach kfp-box") {
		t.Fatalf("err = %v", err)
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		t.Fatalf("unreachable server is a failure (exit 1), not %d", ee.Code)
	}
}
