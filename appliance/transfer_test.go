package appliance_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/appliance/cli"
	"github.com/kfp-box/kfp-box/appliance/client"
)

// kfpbox runs the CLI in-process and returns its output and exit code.
func kfpbox(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	root := cli.NewRoot(&out, &out)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return out.String(), 0
	}
	out.WriteString("kfp-box: " + err.Error() + "\n")
	var ee *cli.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.Code
	}
	return out.String(), 1
}

// hostBox is a box with the host runtime, and a client of it with its admin token. Its
// embedded S3 server is off: a process holds only one (the artifact API serves the files).
func hostBox(t *testing.T) (*box, *client.Client, string) {
	t.Helper()
	b := startBox(t, func(c *appliance.Config) { c.Runtime, c.S3Listen = "host", "off" })
	c, err := client.New(client.Options{Server: "http://" + b.a.Addr(), TokenFile: b.a.AdminTokenPath()})
	if err != nil {
		t.Fatal(err)
	}
	return b, c, "http://" + b.a.Addr()
}

// specVariant writes the API tests' small pipeline with one word changed, so that each
// variant has its own spec digest.
func specVariant(t *testing.T, word string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(filepath.Dir(testdata), "api", "testdata", "params.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Replace(data, []byte(`echo "$0"`), []byte(`echo `+word+` "$0"`), 1)
}

// versionDigests maps "pipeline/version" to the spec digest of every version on a server.
func versionDigests(t *testing.T, c *client.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	ps, err := c.ListPipelines(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range ps {
		vs, err := c.ListPipelineVersions(ctx, p.PipelineID)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			d, err := client.SpecDigest(v.PipelineSpec)
			if err != nil {
				t.Fatal(err)
			}
			out[p.Key()+"/"+v.Key()] = d
		}
	}
	return out
}

func digestSet(m map[string]string) []string {
	var out []string
	for _, d := range m {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// TestPushAndPullBetweenBoxes pushes pipelines with versions, an experiment and a recurring
// run from one box to another, pushes again (nothing changes), changes a version and pushes
// again (exactly one new version, under a new name where the old one is taken), and pulls
// everything back into an empty box, comparing spec digests.
func TestPushAndPullBetweenBoxes(t *testing.T) {
	ctx := context.Background()
	a, ca, urlA := hostBox(t)
	b, cb, urlB := hostBox(t)
	c, cc, urlC := hostBox(t)
	tokA, tokB, tokC := a.a.AdminTokenPath(), b.a.AdminTokenPath(), c.a.AdminTokenPath()

	// Box A: a pipeline with two versions, a second pipeline, an experiment with a
	// recurring run of the first pipeline's second version.
	p1, err := ca.UploadPipeline(ctx, "say-things", "", "says things", specVariant(t, "one"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := ca.UploadPipelineVersion(ctx, p1.PipelineID, "v2", "", "", specVariant(t, "two"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.UploadPipeline(ctx, "other", "", "", specVariant(t, "other")); err != nil {
		t.Fatal(err)
	}
	exp, err := ca.CreateExperiment(ctx, "nightly-exp", "the nightly runs")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ca.CreateRecurringRun(ctx, &client.RecurringRun{
		DisplayName: "nightly", ExperimentID: exp.ExperimentID, Mode: "ENABLE", MaxConcurrency: 1,
		PipelineVersionReference: &client.VersionRef{PipelineID: p1.PipelineID, PipelineVersionID: v2.PipelineVersionID},
		RuntimeConfig:            &client.RuntimeConfig{Parameters: map[string]any{"msg": "hi"}},
		Trigger:                  &client.Trigger{CronSchedule: &client.CronSchedule{Cron: "0 0 3 * * *"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	push := func(extra ...string) (string, int) {
		return kfpbox(t, append([]string{"push", "--server", urlA, "--box-token-file", tokA, "--to", urlB, "--token-file", tokB, "--experiments", "--recurring-runs"}, extra...)...)
	}

	// A dry run shows the plan and changes nothing.
	out, code := push("--dry-run")
	if code != 0 || !strings.Contains(out, "would create") || !strings.Contains(out, "TO CREATE") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	if got := versionDigests(t, cb); len(got) != 0 {
		t.Fatalf("the dry run created versions: %v", got)
	}

	out, code = push()
	t.Logf("first push:\n%s", out)
	if code != 0 {
		t.Fatalf("push: exit %d\n%s", code, out)
	}
	srcDigests := versionDigests(t, ca)
	dstDigests := versionDigests(t, cb)
	if len(srcDigests) != 3 || strings.Join(digestSet(srcDigests), ",") != strings.Join(digestSet(dstDigests), ",") {
		t.Fatalf("digests differ after the push:\nsource %v\ntarget %v", srcDigests, dstDigests)
	}
	if dstDigests["say-things/v2"] != srcDigests["say-things/v2"] {
		t.Fatalf("version v2 did not keep its name and spec: %v", dstDigests)
	}
	exps, _ := cb.ListExperiments(ctx, "")
	var bExp string
	for _, e := range exps {
		if e.DisplayName == "nightly-exp" {
			bExp = e.ExperimentID
		}
	}
	if bExp == "" {
		t.Fatalf("experiment not pushed: %+v", exps)
	}
	rrs, err := cb.ListRecurringRuns(ctx, bExp)
	if err != nil || len(rrs) != 1 {
		t.Fatalf("recurring runs on the target: %+v, %v", rrs, err)
	}
	got := rrs[0]
	if got.Status != "DISABLED" || got.Trigger == nil || got.Trigger.CronSchedule == nil || got.Trigger.CronSchedule.Cron != "0 0 3 * * *" || got.RuntimeConfig.Parameters["msg"] != "hi" {
		t.Fatalf("pushed recurring run: %+v (want paused, same cron and parameters)", got)
	}
	bv, err := cb.GetPipelineVersion(ctx, got.PipelineVersionReference.PipelineID, got.PipelineVersionReference.PipelineVersionID)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := client.SpecDigest(bv.PipelineSpec); d != srcDigests["say-things/v2"] {
		t.Fatalf("the recurring run points at a version with digest %s, want v2's %s", d, srcDigests["say-things/v2"])
	}

	// Again: nothing changes.
	out, code = push()
	if code != 0 || strings.Contains(out, " created") {
		t.Fatalf("second push: exit %d\n%s", code, out)
	}
	if again := versionDigests(t, cb); len(again) != 3 {
		t.Fatalf("second push changed the versions: %v", again)
	}
	if rrs, _ := cb.ListRecurringRuns(ctx, bExp); len(rrs) != 1 {
		t.Fatalf("second push made %d recurring runs", len(rrs))
	}

	// A changed version becomes exactly one new version; its name is taken on the target
	// by another spec, so it gets the digest appended, and says so.
	if _, err := ca.UploadPipelineVersion(ctx, p1.PipelineID, "v3", "", "", specVariant(t, "three")); err != nil {
		t.Fatal(err)
	}
	bPipes, _ := cb.ListPipelines(ctx, "")
	var bP1 string
	for _, p := range bPipes {
		if p.Key() == "say-things" {
			bP1 = p.PipelineID
		}
	}
	if _, err := cb.UploadPipelineVersion(ctx, bP1, "v3", "", "", specVariant(t, "someone-else")); err != nil {
		t.Fatal(err)
	}
	before := versionDigests(t, cb)
	out, code = push()
	t.Logf("push after a change:\n%s", out)
	if code != 0 {
		t.Fatalf("push: exit %d\n%s", code, out)
	}
	after := versionDigests(t, cb)
	if len(after) != len(before)+1 {
		t.Fatalf("%d versions before, %d after; want exactly one new:\n%v", len(before), len(after), after)
	}
	d3 := versionDigests(t, ca)["say-things/v3"]
	renamed := "say-things/v3-" + strings.TrimPrefix(d3, "sha256:")[:12]
	if after[renamed] != d3 || after["say-things/v3"] == d3 || !strings.Contains(out, "as v3-") {
		t.Fatalf("want the changed version as %s:\n%v\n%s", renamed, after, out)
	}

	// Pull everything back into an empty box and compare digests.
	out, code = kfpbox(t, "pull", "--server", urlC, "--box-token-file", tokC, "--from", urlB, "--token-file", tokB, "--experiments", "--recurring-runs")
	t.Logf("pull:\n%s", out)
	if code != 0 {
		t.Fatalf("pull: exit %d\n%s", code, out)
	}
	pulled := versionDigests(t, cc)
	if strings.Join(digestSet(pulled), ",") != strings.Join(digestSet(after), ",") {
		t.Fatalf("pulled digests differ:\npulled %v\nsource %v", pulled, after)
	}
	for k, d := range versionDigests(t, ca) {
		found := false
		for _, pd := range pulled {
			found = found || pd == d
		}
		if !found {
			t.Errorf("version %s (%s) of the first box did not come back", k, d)
		}
	}
	cexps, _ := cc.ListExperiments(ctx, "")
	n := 0
	for _, e := range cexps {
		if e.DisplayName == "nightly-exp" {
			crrs, _ := cc.ListRecurringRuns(ctx, e.ExperimentID)
			n = len(crrs)
		}
	}
	if n != 1 {
		t.Fatalf("pulled box has %d recurring runs in nightly-exp, want 1", n)
	}
}

// TestPushRefusesLintFindings: a pipeline the cluster would run differently is refused with
// the findings and nothing is written; --force pushes it; a failed object is exit 1.
func TestPushRefusesLintFindings(t *testing.T) {
	ctx := context.Background()
	a, ca, urlA := hostBox(t)
	b, cb, urlB := hostBox(t)
	loops, err := os.ReadFile(filepath.Join(projectTestdata, "pipelines", "loops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.UploadPipeline(ctx, "loops", "", "", loops); err != nil {
		t.Fatal(err)
	}
	args := []string{"push", "--server", urlA, "--box-token-file", a.a.AdminTokenPath(), "--to", urlB, "--token-file", b.a.AdminTokenPath()}
	out, code := kfpbox(t, args...)
	if code != 1 || !strings.Contains(out, "artifact-iterator") || !strings.Contains(out, "push refused") {
		t.Fatalf("want a refusal with the finding: exit %d\n%s", code, out)
	}
	if got := versionDigests(t, cb); len(got) != 0 {
		t.Fatalf("a refused push wrote %v", got)
	}
	out, code = kfpbox(t, append(args, "--force")...)
	if code != 0 || len(versionDigests(t, cb)) != 1 {
		t.Fatalf("--force: exit %d\n%s", code, out)
	}
	// A wrong token for the target is the user's input: exit 2, one line.
	bad := filepath.Join(t.TempDir(), "bad-token")
	if err := os.WriteFile(bad, []byte("not-a-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = kfpbox(t, "push", "--server", urlA, "--box-token-file", a.a.AdminTokenPath(), "--to", urlB, "--token-file", bad)
	if code != 2 || !strings.Contains(out, "401") {
		t.Fatalf("bad target token: exit %d\n%s", code, out)
	}
}
