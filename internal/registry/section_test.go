package registry

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type widgetSection struct {
	Address string        `json:"address" doc:"where the widget listens" legacy:"widget_address"`
	Workers int           `json:"workers" doc:"how many workers"`
	Fast    bool          `json:"fast" doc:"skip the slow path"`
	Timeout time.Duration `json:"timeout" doc:"how long to wait"`
	Token   string        `json:"token" doc:"the widget's password" secret:"true"`
}

func (w *widgetSection) Validate() error {
	if w.Workers < 1 {
		return errors.New("workers: want at least 1")
	}
	return nil
}

func newWidget() Section { return &widgetSection{Workers: 2, Timeout: time.Minute} }

func TestSectionFields(t *testing.T) {
	got := Fields(newWidget())
	want := []Field{
		{Key: "address", Type: "string", Value: "", Doc: "where the widget listens", Legacy: "widget_address", index: 0},
		{Key: "workers", Type: "int", Value: "2", Doc: "how many workers", index: 1},
		{Key: "fast", Type: "bool", Value: "false", Doc: "skip the slow path", index: 2},
		{Key: "timeout", Type: "duration", Value: "1m0s", Doc: "how long to wait", index: 3},
		{Key: "token", Type: "string", Value: "", Doc: "the widget's password", Secret: true, index: 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Fields =\n%+v\nwant\n%+v", got, want)
	}
}

func TestSectionDecode(t *testing.T) {
	s := newWidget().(*widgetSection)
	keys, err := Decode(s, map[string]any{"address": "/run/w.sock", "workers": float64(8), "fast": true, "timeout": "90s", "token": nil})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(keys, []string{"address", "fast", "timeout", "workers"}) {
		t.Errorf("keys set = %v", keys)
	}
	want := widgetSection{Address: "/run/w.sock", Workers: 8, Fast: true, Timeout: 90 * time.Second}
	if *s != want {
		t.Errorf("decoded %+v, want %+v", *s, want)
	}

	for name, c := range map[string]struct {
		raw  map[string]any
		want string
	}{
		"unknown key":  {map[string]any{"adress": "x", "workers": float64(1)}, `unknown key "adress" (valid: address, workers, fast, timeout, token)`},
		"bad int":      {map[string]any{"workers": "many"}, `workers: "many" is not an integer`},
		"bad bool":     {map[string]any{"fast": "yes please"}, `fast: "yes please" is not true or false`},
		"bad duration": {map[string]any{"timeout": "soon"}, `timeout: "soon" is not a duration`},
		"mapping":      {map[string]any{"address": map[string]any{"a": "b"}}, "address: want a single value, not a mapping"},
		"list":         {map[string]any{"address": []any{"a"}}, "address: want a single value, not a list"},
	} {
		_, err := Decode(newWidget(), c.raw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
		if name == "unknown key" && !errors.Is(err, ErrUnknownKey) {
			t.Errorf("unknown key: %v does not wrap ErrUnknownKey", err)
		}
	}
}

type badSection struct {
	Things []string `json:"things" doc:"a list"`
}

func (*badSection) Validate() error { return nil }

type undocumented struct {
	Name string `json:"name"`
}

func (*undocumented) Validate() error { return nil }

// TestRegisterChecksSection: a section Fields cannot describe (a field type it does not
// parse, a field without docs) fails at registration, not at the first configuration load.
func TestRegisterChecksSection(t *testing.T) {
	r := New[int]("widget")
	r.Register("good", newWidget, 1)
	if s := r.NewSection("good"); s == nil || s.(*widgetSection).Workers != 2 {
		t.Fatalf("NewSection(good) = %#v", s)
	}
	if s := r.NewSection("nope"); s != nil {
		t.Fatalf("NewSection(nope) = %#v, want nil", s)
	}
	for id, f := range map[string]func() Section{
		"list":         func() Section { return &badSection{} },
		"undocumented": func() Section { return &undocumented{} },
		"not pointer":  func() Section { return widgetValue{} },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("registering section %q did not panic", id)
				}
			}()
			r.Register(id, f, 0)
		}()
	}
}

type widgetValue struct{}

func (widgetValue) Validate() error { return nil }
