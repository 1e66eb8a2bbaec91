package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newGPUCmd) }

// gpuListPath is the server's GPU inventory endpoint.
const gpuListPath = "/apis/v2beta1/gpus"

// gpuInfo is one GPU as GET /apis/v2beta1/gpus returns it.
type gpuInfo struct {
	Index              int    `json:"index"`
	UUID               string `json:"uuid"`
	Name               string `json:"name"`
	MemoryTotalBytes   uint64 `json:"memory_total_bytes"`
	MemoryUsedBytes    uint64 `json:"memory_used_bytes"`
	UtilizationPercent *int   `json:"utilization_percent"`
	MIGEnabled         bool   `json:"mig_enabled"`
	Healthy            bool   `json:"healthy"`
	HealthReason       string `json:"health_reason"`
	DriverVersion      string `json:"driver_version"`
	CUDAVersion        string `json:"cuda_version"`
	AssignedTo         string `json:"assigned_to"`
}

// gpuListBody is the body of GET /apis/v2beta1/gpus.
type gpuListBody struct {
	GPUs              []gpuInfo `json:"gpus"`
	UnavailableReason string    `json:"unavailable_reason"`
}

// newGPUCmd is `kfp-box gpu`: the box's GPUs as the server sees them.
func newGPUCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gpu",
		Short: "The GPUs of the box and the tasks holding them",
	}
	cmd.AddCommand(newGPUListCmd())
	return cmd
}

func newGPUListCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List GPUs: model, memory, utilization, health and the task holding each",
		Long: `Lists the GPUs a running kfp-box found through NVML, with their memory, last sampled
utilization, MIG mode, health and the task execution holding each. On a box without GPUs it
says why none were found (for example a missing NVIDIA driver).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageErr("--output %q: want table or json", output)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			defer cancel()
			body, raw, err := fetchGPUs(ctx, newAPIClient(cmd))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				_, err := out.Write(raw)
				return err
			}
			printGPUs(out, body)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// serverURL is --server (a persistent flag of the root) or KFPBOX_SERVER or the default.
func serverURL(cmd *cobra.Command) string {
	if f := cmd.Flag("server"); f != nil && f.Value.String() != "" {
		return strings.TrimRight(f.Value.String(), "/")
	}
	return strings.TrimRight(envOr("KFPBOX_SERVER", defaultServer), "/")
}

// fetchGPUs reads the inventory from the server; raw is the body as received.
func fetchGPUs(ctx context.Context, c *apiClient) (gpuListBody, []byte, error) {
	var body gpuListBody
	server := c.base
	if c.err != nil {
		return body, nil, c.err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+gpuListPath, nil)
	if err != nil {
		return body, nil, usageErr("--server %q: %v", server, err)
	}
	c.creds.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return body, nil, fmt.Errorf("cannot reach kfp-box at %s (is 'kfp-box serve' running?): %w", server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return body, nil, fmt.Errorf("reading %s%s: %w", server, gpuListPath, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return body, nil, fmt.Errorf("server %s has no GPU endpoint (%s answered 404): is it a kfp-box with GPU support?", server, gpuListPath)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return body, nil, c.statusError(resp, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Message != "" {
			msg = e.Message
		}
		return body, nil, fmt.Errorf("server %s answered %s: %s", server, resp.Status, msg)
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return body, nil, fmt.Errorf("server %s: bad GPU list: %w", server, err)
	}
	return body, raw, nil
}

// printGPUs writes the inventory as a table, or why there is none.
func printGPUs(w io.Writer, b gpuListBody) {
	if len(b.GPUs) == 0 {
		reason := b.UnavailableReason
		if reason == "" {
			reason = "the server reported none"
		}
		fmt.Fprintf(w, "no GPUs found: %s\n", reason)
		return
	}
	g := b.GPUs[0]
	fmt.Fprintf(w, "driver %s, CUDA %s\n", orDash(g.DriverVersion), orDash(g.CUDAVersion))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tNAME\tUUID\tMEMORY USED/TOTAL\tUTIL\tMIG\tHEALTH\tASSIGNED TO")
	for _, g := range b.GPUs {
		util := "-"
		if g.UtilizationPercent != nil {
			util = fmt.Sprintf("%d%%", *g.UtilizationPercent)
		}
		mig := "off"
		if g.MIGEnabled {
			mig = "on"
		}
		health := "ok"
		if !g.Healthy {
			health = "unhealthy"
			if g.HealthReason != "" {
				health += " (" + g.HealthReason + ")"
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s / %s\t%s\t%s\t%s\t%s\n", g.Index, g.Name, g.UUID,
			gib(g.MemoryUsedBytes), gib(g.MemoryTotalBytes), util, mig, health, orDash(g.AssignedTo))
	}
	_ = tw.Flush()
}

func gib(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
