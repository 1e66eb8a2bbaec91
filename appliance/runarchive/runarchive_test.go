package runarchive

import "testing"

func TestSplitArtifactMember(t *testing.T) {
	for name, want := range map[string][2]string{
		"artifacts/12":               {"12", ""},
		"artifacts/12/a/b.csv":       {"12", "a/b.csv"},
		"artifacts/12/../../etc/x":   {"", ""},
		"artifacts/../x":             {"", ""},
		"artifacts/12//x":            {"", ""},
		"artifacts/12/./x":           {"", ""},
		"logs/12.log":                {"", ""},
		"artifacts/":                 {"", ""},
		"artifacts/12/x\x00y":        {"", ""},
		"artifacts/12/dir/../../esc": {"", ""},
	} {
		id, rel, ok := SplitArtifactMember(name)
		if ok != (want[0] != "") || id != want[0] || rel != want[1] {
			t.Errorf("SplitArtifactMember(%q) = %q, %q, %v; want %q, %q", name, id, rel, ok, want[0], want[1])
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Manifest{Format: Format, Run: []byte(`{}`), PipelineSpec: []byte(`{}`),
		Artifacts: []Artifact{{ArtifactID: "1", File: "artifacts/1"}}, Logs: []Log{{TaskID: "2", File: "logs/2.log"}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(m *Manifest){
		"format":        func(m *Manifest) { m.Format = "x" },
		"no run":        func(m *Manifest) { m.Run = nil },
		"repeated id":   func(m *Manifest) { m.Artifacts = append(m.Artifacts, m.Artifacts[0]) },
		"other file":    func(m *Manifest) { m.Artifacts = []Artifact{{ArtifactID: "1", File: "artifacts/2"}} },
		"unsafe id":     func(m *Manifest) { m.Artifacts = []Artifact{{ArtifactID: "../1"}} },
		"log elsewhere": func(m *Manifest) { m.Logs = []Log{{TaskID: "2", File: "../2.log"}} },
	} {
		m := ok
		m.Artifacts = append([]Artifact(nil), ok.Artifacts...)
		change(&m)
		if err := m.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
