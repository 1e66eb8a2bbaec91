package resources

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// ErrInvalid means a quantity string is not a valid Kubernetes quantity, or is negative
// where an amount is required.
var ErrInvalid = errors.New("invalid quantity")

// suffixes maps a Kubernetes quantity suffix to its multiplier as a rational number.
var suffixes = map[string]*big.Rat{
	"n":  big.NewRat(1, 1_000_000_000),
	"u":  big.NewRat(1, 1_000_000),
	"m":  big.NewRat(1, 1000),
	"":   big.NewRat(1, 1),
	"k":  big.NewRat(1000, 1),
	"M":  big.NewRat(1_000_000, 1),
	"G":  big.NewRat(1_000_000_000, 1),
	"T":  big.NewRat(1_000_000_000_000, 1),
	"P":  big.NewRat(1_000_000_000_000_000, 1),
	"E":  big.NewRat(1_000_000_000_000_000_000, 1),
	"Ki": new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 10)),
	"Mi": new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 20)),
	"Gi": new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 30)),
	"Ti": new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 40)),
	"Pi": new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 50)),
	"Ei": new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 60)),
}

// maxQuantityLen bounds the input so that parsing stays cheap on hostile strings.
const maxQuantityLen = 64

// ParseQuantity parses a Kubernetes quantity ("500m", "1.5", "512Mi", "1G", "2e3", "+1")
// and returns its exact value. Surrounding spaces are ignored; an empty string is invalid.
func ParseQuantity(s string) (*big.Rat, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxQuantityLen {
		return nil, fmt.Errorf("quantity %q: %w", in, ErrInvalid)
	}
	neg := false
	switch s[0] {
	case '+':
		s = s[1:]
	case '-':
		neg, s = true, s[1:]
	}
	// The number: digits with at most one dot, at least one digit.
	i, digits, dots := 0, 0, 0
	for ; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			digits++
			continue
		}
		if c == '.' && dots == 0 {
			dots++
			continue
		}
		break
	}
	if digits == 0 {
		return nil, fmt.Errorf("quantity %q: no digits: %w", in, ErrInvalid)
	}
	num, suffix := s[:i], s[i:]
	v, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, fmt.Errorf("quantity %q: %w", in, ErrInvalid)
	}
	if mult, ok := suffixes[suffix]; ok {
		v.Mul(v, mult)
	} else if suffix[0] == 'e' || suffix[0] == 'E' {
		exp, err := parseExponent(suffix[1:])
		if err != nil {
			return nil, fmt.Errorf("quantity %q: %w", in, err)
		}
		p := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil))
		if exp < 0 {
			p.Inv(p)
		}
		v.Mul(v, p)
	} else {
		return nil, fmt.Errorf("quantity %q: unknown suffix %q: %w", in, suffix, ErrInvalid)
	}
	if neg {
		v.Neg(v)
	}
	return v, nil
}

// parseExponent parses the signed decimal exponent of a quantity like "2e3", bounded so
// that huge exponents cannot make parsing slow.
func parseExponent(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty exponent: %w", ErrInvalid)
	}
	sign := 1
	switch s[0] {
	case '+':
		s = s[1:]
	case '-':
		sign, s = -1, s[1:]
	}
	if s == "" || len(s) > 3 {
		return 0, fmt.Errorf("exponent out of range: %w", ErrInvalid)
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad exponent: %w", ErrInvalid)
		}
		n = n*10 + int(c-'0')
	}
	if n > 30 {
		return 0, fmt.Errorf("exponent %d out of range: %w", sign*n, ErrInvalid)
	}
	return sign * n, nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// CPU parses a CPU quantity ("500m", "2", "0.25") into cores. Negative values are invalid.
func CPU(s string) (float64, error) {
	v, err := ParseQuantity(s)
	if err != nil {
		return 0, err
	}
	if v.Sign() < 0 {
		return 0, fmt.Errorf("cpu %q: negative: %w", s, ErrInvalid)
	}
	f, _ := v.Float64()
	return f, nil
}

// MemoryBytes parses a memory quantity ("512Mi", "1G", "1.5Gi", "1e9") into bytes,
// rounding a fractional byte count up like Kubernetes does. Negative values and values
// beyond an int64 are invalid.
func MemoryBytes(s string) (int64, error) {
	v, err := ParseQuantity(s)
	if err != nil {
		return 0, err
	}
	if v.Sign() < 0 {
		return 0, fmt.Errorf("memory %q: negative: %w", s, ErrInvalid)
	}
	return ratToBytes(s, v)
}

// ratToBytes rounds v up to a whole number of bytes and checks it fits an int64.
func ratToBytes(s string, v *big.Rat) (int64, error) {
	q, r := new(big.Int).QuoRem(v.Num(), v.Denom(), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("memory %q: too large: %w", s, ErrInvalid)
	}
	return q.Int64(), nil
}

// DeprecatedMemoryGB converts KFP's deprecated memoryLimit/memoryRequest float, which is in
// gigabytes (10^9 bytes; the SDK writes "%vG"), into bytes.
func DeprecatedMemoryGB(gb float64) (int64, error) {
	if math.IsNaN(gb) || math.IsInf(gb, 0) || gb < 0 {
		return 0, fmt.Errorf("memory %vG: %w", gb, ErrInvalid)
	}
	v, ok := new(big.Rat).SetString(fmt.Sprintf("%v", gb))
	if !ok {
		return 0, fmt.Errorf("memory %vG: %w", gb, ErrInvalid)
	}
	return ratToBytes(fmt.Sprintf("%vG", gb), v.Mul(v, suffixes["G"]))
}

// DeprecatedCPU checks KFP's deprecated cpuLimit/cpuRequest float, which is in cores.
func DeprecatedCPU(cores float64) (float64, error) {
	if math.IsNaN(cores) || math.IsInf(cores, 0) || cores < 0 {
		return 0, fmt.Errorf("cpu %v: %w", cores, ErrInvalid)
	}
	return cores, nil
}
