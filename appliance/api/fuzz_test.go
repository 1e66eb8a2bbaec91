package api

import (
	"errors"
	"testing"
)

// FuzzDecodeRun: any request body decodes or fails with ErrInvalid; it never panics.
func FuzzDecodeRun(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"display_name":"r","pipeline_spec":{"a":1},"runtime_config":{"parameters":{"x":1}}}`,
		`{"displayName":"r","runtimeConfig":{"pipelineRoot":"x"}}`, `{"display_name":"a","displayName":"b"}`,
		`[]`, `null`, `{"runtime_config":[]}`, `{"pipeline_version_reference":{"pipelineId":"p"}}`,
		`{"max_concurrency":"12","trigger":{"cronSchedule":{"cron":"@daily","startTime":"2026-01-01T00:00:00Z"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in runIn
		if err := decodeMessage(body, shapeRun, &in); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode run %q = %v, not ErrInvalid", body, err)
			}
		} else if _, err := in.RuntimeConfig.params(); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("params %q = %v", body, err)
		}
		var rr recurringRunIn
		if err := decodeMessage(body, shapeRecurringRun, &rr); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode recurring run %q = %v, not ErrInvalid", body, err)
			}
			return
		}
		if _, err := rr.Trigger.toMeta(); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("trigger %q = %v", body, err)
		}
	})
}
