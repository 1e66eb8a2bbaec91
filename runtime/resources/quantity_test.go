package resources

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

func TestCPU(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"500m", 0.5}, {"1", 1}, {"2.5", 2.5}, {"0.25", 0.25}, {"100m", 0.1},
		{" 4 ", 4}, {"+1", 1}, {"1e3", 1000}, {"250000u", 0.25}, {"1k", 1000}, {".5", 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CPU(tt.in)
			if err != nil {
				t.Fatalf("CPU(%q): %v", tt.in, err)
			}
			if math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("CPU(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestMemoryBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1Gi", 1 << 30}, {"512Mi", 512 << 20}, {"1G", 1_000_000_000}, {"1M", 1_000_000},
		{"1.5Gi", 3 << 29}, {"128974848", 128974848}, {"129e6", 129_000_000}, {"123Mi", 123 << 20},
		{"1k", 1000}, {"1Ki", 1024}, {"0.5", 1}, {"100m", 1}, {"1E", 1e18}, {"7Ei", 7 << 60},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := MemoryBytes(tt.in)
			if err != nil {
				t.Fatalf("MemoryBytes(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("MemoryBytes(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	for _, in := range []string{"", " ", "abc", "1x", "1Gib", "--1", "1..5", ".", "1e", "1e999", "m", "-1", "1 Gi", "8Ei", "1e-"} {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			_, err := MemoryBytes(in)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("MemoryBytes(%q) err = %v, want ErrInvalid", in, err)
			}
		})
	}
	if _, err := CPU("-500m"); !errors.Is(err, ErrInvalid) {
		t.Errorf("CPU(-500m) err = %v, want ErrInvalid", err)
	}
}

func TestDeprecated(t *testing.T) {
	tests := []struct {
		gb   float64
		want int64
	}{
		{1, 1_000_000_000}, {0.5, 500_000_000}, {2.5, 2_500_000_000}, {0.001, 1_000_000}, {0, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.gb), func(t *testing.T) {
			got, err := DeprecatedMemoryGB(tt.gb)
			if err != nil || got != tt.want {
				t.Errorf("DeprecatedMemoryGB(%v) = %d, %v; want %d", tt.gb, got, err, tt.want)
			}
			// The SDK formats the float as "%vG"; both paths must agree.
			viaString, err := MemoryBytes(fmt.Sprintf("%vG", tt.gb))
			if err != nil || viaString != got {
				t.Errorf("MemoryBytes(%vG) = %d, %v; want %d", tt.gb, viaString, err, got)
			}
		})
	}
	for _, bad := range []float64{-1, math.NaN(), math.Inf(1)} {
		if _, err := DeprecatedMemoryGB(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("DeprecatedMemoryGB(%v) err = %v, want ErrInvalid", bad, err)
		}
		if _, err := DeprecatedCPU(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("DeprecatedCPU(%v) err = %v, want ErrInvalid", bad, err)
		}
	}
	if c, err := DeprecatedCPU(1.5); err != nil || c != 1.5 {
		t.Errorf("DeprecatedCPU(1.5) = %v, %v", c, err)
	}
}

// FuzzParseQuantity checks that parsing never panics, that errors wrap ErrInvalid, and
// that an integer written with a binary or decimal suffix parses back to its exact value.
func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"500m", "1Gi", "1.5", "2e3", "-1", "1e-3", "+.5Ki", "99999999999999999999E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseQuantity(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseQuantity(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if v == nil {
			t.Fatalf("ParseQuantity(%q) returned nil without error", s)
		}
		if b, err := MemoryBytes(s); err == nil && b < 0 {
			t.Fatalf("MemoryBytes(%q) = %d < 0", s, b)
		}
	})
}

// FuzzRoundTrip formats an integer with each suffix and checks the exact value comes back.
func FuzzRoundTrip(f *testing.F) {
	f.Add(int64(1), uint8(0))
	f.Add(int64(512), uint8(3))
	f.Fuzz(func(t *testing.T, n int64, which uint8) {
		if n < 0 {
			n = -(n + 1)
		}
		units := []struct {
			suffix string
			mult   int64
		}{{"", 1}, {"k", 1000}, {"Ki", 1024}, {"Mi", 1 << 20}, {"M", 1_000_000}, {"Gi", 1 << 30}, {"G", 1_000_000_000}}
		u := units[int(which)%len(units)]
		n %= math.MaxInt64 / u.mult
		s := fmt.Sprintf("%d%s", n, u.suffix)
		got, err := MemoryBytes(s)
		if err != nil {
			t.Fatalf("MemoryBytes(%q): %v", s, err)
		}
		if got != n*u.mult {
			t.Fatalf("MemoryBytes(%q) = %d, want %d", s, got, n*u.mult)
		}
	})
}
