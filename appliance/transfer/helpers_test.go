package transfer

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/kfp-box/kfp-box/appliance/spec"
)

// variant is the API tests' small pipeline with one word changed.
func variant(t *testing.T, word string) []byte {
	t.Helper()
	data, err := os.ReadFile("../api/testdata/params.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Replace(data, []byte(`echo "$0"`), []byte(`echo `+word+` "$0"`), 1)
}

// specJSON is a package's spec in the form the API returns.
func specJSON(pkg []byte) (json.RawMessage, error) {
	p, err := spec.Parse(pkg)
	if err != nil {
		return nil, err
	}
	return p.StoredJSON(), nil
}
