package registry

import (
	"reflect"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	r := New[func() string]("widget")
	r.Register("b", nil, func() string { return "bee" })
	r.Register("a", nil, func() string { return "ay" })
	if f, ok := r.Lookup("a"); !ok || f() != "ay" {
		t.Fatalf("lookup a: %v", ok)
	}
	if _, ok := r.Lookup("c"); ok {
		t.Fatal("lookup of an unregistered id succeeded")
	}
	if got := r.IDs(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("IDs = %v", got)
	}
	if msg := r.Missing("c"); !strings.Contains(msg, `widget "c" is not registered`) || !strings.Contains(msg, "[a b]") {
		t.Fatalf("Missing = %q", msg)
	}
	for name, id := range map[string]string{"duplicate": "a", "empty": ""} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("registering %q did not panic", id)
				}
			}()
			r.Register(id, nil, func() string { return "" })
		})
	}
}
