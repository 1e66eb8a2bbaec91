package s3

import (
	"errors"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/internal/registry"
)

// TestSettings: a URL and the equivalent section resolve to the same Config as ParseURL;
// unknown URL parameters and section keys name the valid ones; errors never show the
// secret key; the defaults (no bucket) do not validate.
func TestSettings(t *testing.T) {
	const raw = "s3://bkt?endpoint=http://minio:9000&region=eu&access_key=AK&secret_key=hunter2&part_size=8388608&sign_payload=false"
	want, err := ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	fromURL := NewSettings()
	if err := fromURL.FromURL(raw); err != nil {
		t.Fatal(err)
	}
	fromKeys := NewSettings()
	if _, err := registry.Decode(fromKeys, map[string]any{"bucket": "bkt", "endpoint": "http://minio:9000", "region": "eu",
		"access_key": "AK", "secret_key": "hunter2", "part_size": float64(8388608), "sign_payload": "false"}); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Settings{"url": fromURL, "keys": fromKeys} {
		got, err := s.Config()
		if err != nil || got != want {
			t.Errorf("%s: Config() = %+v, %v; want %+v", name, got, err, want)
		}
	}
	if *fromURL != *fromKeys {
		t.Errorf("FromURL %+v differs from the keys %+v", *fromURL, *fromKeys)
	}
	// FromURL starts from the defaults: nothing of an earlier value survives.
	if err := fromURL.FromURL("s3://other"); err != nil || *fromURL != (Settings{Bucket: "other"}) {
		t.Errorf("FromURL(s3://other) = %+v, %v", *fromURL, err)
	}
	if err := NewSettings().FromURL("s3://bkt?endpoint=http://m:9&secretkey=x"); err == nil || !strings.Contains(err.Error(), `unknown URL parameter "secretkey" (valid: access_key,`) {
		t.Errorf("unknown parameter: %v", err)
	}
	if _, err := registry.Decode(NewSettings(), map[string]any{"secretkey": "x"}); !errors.Is(err, registry.ErrUnknownKey) {
		t.Errorf("unknown key: %v", err)
	}
	if err := NewSettings().Validate(); err == nil || !strings.Contains(err.Error(), "bucket is empty") {
		t.Errorf("defaults validate: %v", err)
	}
	for name, s := range map[string]Settings{
		"bad endpoint":     {Bucket: "bkt", Endpoint: "http://h/path", SecretKey: "hunter2"},
		"small part":       {Bucket: "bkt", PartSize: 1024, SecretKey: "hunter2"},
		"negative part":    {Bucket: "bkt", PartSize: -1},
		"bad sign_payload": {Bucket: "bkt", SignPayload: "maybe", SecretKey: "hunter2"},
		"bad bucket":       {Bucket: "No_Such", SecretKey: "hunter2"},
	} {
		err := s.Validate()
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v, want an error without the secret", name, err)
		}
	}
	if f := registry.Fields(NewSettings()); f[4].Key != "secret_key" || !f[4].Secret {
		t.Errorf("secret_key is not marked secret: %+v", f[4])
	}
}

// FuzzSettingsFromURL: FromURL never panics; where both it and ParseURL accept a URL, the
// section resolves to ParseURL's Config (the URL and the section are one setting); the
// section's errors never carry its secret key.
func FuzzSettingsFromURL(f *testing.F) {
	for _, s := range []string{
		"s3://mlpipeline?endpoint=http://127.0.0.1:9000&access_key=a&secret_key=b",
		"s3://b?endpoint=h:1&part_size=99999999&sign_payload=true",
		"s3://bkt?endpoint=http://h/p&secret_key=zzz",
		"s3://bkt?part_size=%2B5242880",
		"s3://bkt?region=eu&region=us",
		"gs://x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s := NewSettings()
		if err := s.FromURL(raw); err != nil {
			return
		}
		got, err := s.Config()
		if err != nil {
			if s.SecretKey != "" && strings.Contains(err.Error(), s.SecretKey) && !strings.Contains(s.url("")+" must be at least 5242880 scheme://host[:port] sign_payload true false bucket is empty invalid argument", s.SecretKey) {
				t.Fatalf("error shows the secret key %q: %v", s.SecretKey, err)
			}
			return
		}
		want, err := ParseURL(raw)
		if err != nil {
			return // FromURL reads part_size with Atoi, which takes a sign ParseURL refuses
		}
		if got != want {
			t.Fatalf("section of %q resolves to %+v, ParseURL to %+v", raw, got, want)
		}
	})
}
