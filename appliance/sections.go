package appliance

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kfp-box/kfp-box/internal/registry"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/objects"
)

// A backend family in the configuration: a top-level key that picks the backend (the
// scalar form `runtime: host`, or `backend:` inside the mapping form) and, in the mapping
// form, one section per registered backend with that backend's typed settings:
//
//	runtime:
//	  backend: containerd
//	  containerd:
//	    address: /run/containerd/containerd.sock
//	  host:
//	    mount_namespaces: true
//
// The backends and their settings come from the family's registry; nothing here names
// them. A section field FIELD of backend ID in family FAM is the flag --FAM-ID-FIELD and
// the environment variable KFPBOX_FAM_ID_FIELD ('_' ↔ '-', upper-cased), and its source
// key is "FAM.ID.FIELD".
type family struct {
	// key is the family's top-level key, also the Config field holding the choice.
	key string
	// doc introduces the family in `config schema`.
	doc string
	// reg lists the backends and makes their sections.
	reg registry.Family
	// extra are choices beyond the registered ids ("auto").
	extra []string
	// choice points at the Config field holding the chosen backend.
	choice func(*Config) *string
}

// chooseKey is the key of the chosen backend inside a family's mapping.
const chooseKey = "backend"

func families() []family {
	return []family{{
		key: "runtime",
		doc: "The task runtime. `backend` picks it: `auto` uses containerd when it answers or can be started, else the host runtime. " +
			"Each runtime's own settings are in the section named after it; only the chosen runtime's section is used.",
		reg:    runtime.Backends(),
		extra:  []string{"auto"},
		choice: func(c *Config) *string { return &c.Runtime },
	}, {
		key: "object_store",
		doc: "Where artifacts are kept. `backend` picks the store; a backend whose section can be written as one URL also takes that URL in place of its name " +
			"(`object_store: s3://BUCKET?endpoint=URL&access_key=...&secret_key=...`: the URL's parameters are the section's keys, the bucket its host).",
		reg:    objects.Backends(),
		choice: func(c *Config) *string { return &c.ObjectStore },
	}}
}

// familyOf returns the family whose choice is the top-level key, if any.
func familyOf(key string) (family, bool) {
	for _, f := range families() {
		if f.key == key {
			return f, true
		}
	}
	return family{}, false
}

// choices lists a family's valid backend names.
func (f family) choices() []string { return append(append([]string{}, f.extra...), f.reg.IDs()...) }

// sectionField is one field of one backend section, with its names in every source.
type sectionField struct {
	fam, id string
	registry.Field
}

func (s sectionField) path() string { return s.fam + "." + s.id + "." + s.Key }
func (s sectionField) flag() string {
	return strings.ReplaceAll(s.fam+"-"+s.id+"-"+s.Key, "_", "-")
}
func (s sectionField) env() string {
	return "KFPBOX_" + strings.ToUpper(strings.ReplaceAll(s.fam+"_"+s.id+"_"+s.Key, "-", "_"))
}
func (s sectionField) legacyFlag() string { return strings.ReplaceAll(s.Legacy, "_", "-") }
func (s sectionField) legacyEnv() string  { return "KFPBOX_" + strings.ToUpper(s.Legacy) }

// defaultSections returns a fresh section of every registered backend that has one, keyed
// "FAMILY.ID".
func defaultSections() map[string]registry.Section {
	out := map[string]registry.Section{}
	for _, f := range families() {
		for _, id := range f.reg.IDs() {
			if s := f.reg.NewSection(id); s != nil {
				out[f.key+"."+id] = s
			}
		}
	}
	return out
}

// sectionFields lists the fields of c's sections, family by family, backend by backend
// (sorted), fields in declaration order.
func (c Config) sectionFields() []sectionField {
	var out []sectionField
	for _, f := range families() {
		for _, id := range f.reg.IDs() {
			s := c.Backends[f.key+"."+id]
			if s == nil {
				continue
			}
			for _, fl := range registry.Fields(s) {
				out = append(out, sectionField{fam: f.key, id: id, Field: fl})
			}
		}
	}
	return out
}

// Section returns the settings of backend id in family ("runtime", "containerd"), nil when
// the backend has none. The value is shared by copies of c.
func (c Config) Section(family, id string) registry.Section { return c.Backends[family+"."+id] }

// setSection parses value into one section field.
func (c *Config) setSection(f sectionField, value string) error {
	return registry.Set(c.Backends[f.fam+"."+f.id], f.Key, value)
}

// applyFamily reads a family's value from the configuration file: a backend name, or a
// mapping of `backend` and per-backend sections. It returns the source keys it set.
func (c *Config) applyFamily(f family, val any) ([]string, error) {
	m, ok := val.(map[string]any)
	if !ok {
		s, err := registry.Scalar(val)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f.key, err)
		}
		*f.choice(c) = s
		return []string{f.key}, nil
	}
	valid := append([]string{chooseKey}, f.reg.IDs()...)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var set []string
	for _, k := range keys {
		v := m[k]
		if k == chooseKey {
			s, err := registry.Scalar(v)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %v", f.key, k, err)
			}
			*f.choice(c) = s
			set = append(set, f.key)
			continue
		}
		sec := c.Backends[f.key+"."+k]
		if sec == nil {
			return nil, fmt.Errorf("%s: unknown key %q (valid: %s)", f.key, k, strings.Join(valid, ", "))
		}
		if v == nil {
			continue
		}
		sm, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s.%s: want a mapping of %s's settings (keys: %s)", f.key, k, k, strings.Join(registry.Keys(sec), ", "))
		}
		fieldKeys, err := registry.Decode(sec, sm)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %v", f.key, k, err)
		}
		for _, fk := range fieldKeys {
			set = append(set, f.key+"."+k+"."+fk)
		}
	}
	return set, nil
}

// legacyKeys maps the old top-level keys of section fields to the fields.
func (c Config) legacyKeys() map[string]sectionField {
	out := map[string]sectionField{}
	for _, f := range c.sectionFields() {
		if f.Legacy != "" {
			out[f.Legacy] = f
		}
	}
	return out
}

// addSectionFlags registers a flag per section field (and its legacy flag, if any).
func addSectionFlags(fs *pflag.FlagSet, c Config) {
	for _, f := range c.sectionFields() {
		help := f.Doc + " (env " + f.env() + ")"
		addTyped(fs, f.flag(), f.Type, f.Value, help)
		if f.Legacy != "" && fs.Lookup(f.legacyFlag()) == nil {
			addTyped(fs, f.legacyFlag(), f.Type, f.Value, "same as --"+f.flag()+" (env "+f.legacyEnv()+")")
		}
	}
}

func addTyped(fs *pflag.FlagSet, name, typ, def, help string) {
	switch typ {
	case "bool":
		fs.Bool(name, def == "true", help)
	default:
		// Ints and durations are parsed with the section's own rules (registry.Set), so
		// their errors read the same from every source.
		fs.String(name, def, help)
	}
}

// urlChoice splits a family choice written as a URL into the backend (its scheme) and a
// fresh section of that backend set from the URL. ok is false when choice is no URL.
func (f family) urlChoice(choice string) (id string, sec registry.URLSection, ok bool, err error) {
	scheme, _, isURL := strings.Cut(choice, "://")
	if !isURL {
		return "", nil, false, nil
	}
	us, takesURL := f.reg.NewSection(scheme).(registry.URLSection)
	if !takesURL {
		return "", nil, true, fmt.Errorf("%w: %s %q: want %s, or the URL of a backend configured by one", ErrConfig, f.key, RedactSecrets(choice), orList(f.choices()))
	}
	if err := us.FromURL(choice); err != nil {
		return "", nil, true, fmt.Errorf("%w: %s: %v", ErrConfig, f.key, err)
	}
	return scheme, us, true, nil
}

// ResolveURLs turns each family choice written as a URL (object_store: s3://...) into the
// backend's name and its section, so that the rest of the box reads one form. Load does it;
// a Config made in code must call it (New does) before reading those sections. src, when
// not nil, gets the choice's source for every field the URL set.
func (c *Config) ResolveURLs(src Sources) error {
	for _, f := range families() {
		choice := f.choice(c)
		id, sec, ok, err := f.urlChoice(*choice)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if c.Backends == nil {
			c.Backends = map[string]registry.Section{}
		}
		c.Backends[f.key+"."+id] = sec
		*choice = id
		if src != nil {
			for _, fl := range registry.Fields(sec) {
				src[f.key+"."+id+"."+fl.Key] = src[f.key]
			}
		}
	}
	return nil
}

// validateFamilies checks each family's choice against its registry, and the chosen
// backend's section (every section when the choice is not a backend, as auto is not).
func (c Config) validateFamilies() error {
	for _, f := range families() {
		choice := *f.choice(&c)
		if id, sec, ok, err := f.urlChoice(choice); ok {
			if err == nil {
				if err = sec.Validate(); err != nil {
					err = fmt.Errorf("%w: %s.%s: %v", ErrConfig, f.key, id, err)
				}
			}
			if err != nil {
				return err
			}
			continue
		}
		ok := false
		for _, id := range f.choices() {
			ok = ok || id == choice
		}
		if !ok {
			return fmt.Errorf("%w: %s %q: want %s", ErrConfig, f.key, choice, orList(f.choices()))
		}
		for _, id := range f.reg.IDs() {
			if id != choice && !slices.Contains(f.extra, choice) {
				continue
			}
			if s := c.Backends[f.key+"."+id]; s != nil {
				if err := s.Validate(); err != nil {
					return fmt.Errorf("%w: %s.%s: %v", ErrConfig, f.key, id, err)
				}
			}
		}
	}
	return nil
}

// SectionView is a section's values without its secret fields (for logs and /system).
func SectionView(sec registry.Section) map[string]string {
	out := map[string]string{}
	if sec == nil {
		return out
	}
	for _, f := range registry.Fields(sec) {
		if !f.Secret {
			out[f.Key] = RedactSecrets(f.Value)
		}
	}
	return out
}

// orList is "a, b or c".
func orList(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}
