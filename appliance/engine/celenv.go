package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// ErrCEL is wrapped by condition and selector evaluation errors.
var ErrCEL = errors.New("cel expression")

// parseJSONFunc is KFP's extra CEL function parseJson(string) -> dyn.
var parseJSONFunc = cel.Function("parseJson",
	cel.Overload("parseJson_string", []*cel.Type{cel.StringType}, cel.DynType,
		cel.UnaryBinding(func(v ref.Val) ref.Val {
			s, ok := v.(types.String)
			if !ok {
				return types.NewErr("parseJson: want a string, got %s", v.Type())
			}
			var out any
			if err := json.Unmarshal([]byte(s), &out); err != nil {
				return types.NewErr("parseJson: %v", err)
			}
			return types.DefaultTypeAdapter.NativeToValue(out)
		})))

var (
	condEnv = sync.OnceValues(func() (*cel.Env, error) {
		return cel.NewEnv(cel.Variable("inputs", cel.DynType), parseJSONFunc)
	})
	selEnv = sync.OnceValues(func() (*cel.Env, error) {
		return cel.NewEnv(
			cel.Variable("string_value", cel.StringType),
			cel.Variable("number_value", cel.DoubleType),
			cel.Variable("bool_value", cel.BoolType),
			cel.Variable("list_value", cel.ListType(cel.DynType)),
			cel.Variable("struct_value", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("null_value", cel.DynType),
			parseJSONFunc)
	})
	progCache sync.Map // "c:"/"s:" + expression -> cel.Program
)

func program(kind string, env func() (*cel.Env, error), expr string) (cel.Program, error) {
	if p, ok := progCache.Load(kind + expr); ok {
		return p.(cel.Program), nil
	}
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("%w: environment: %v", ErrCEL, err)
	}
	ast, iss := e.Parse(expr) // unchecked: dyn values dispatch at run time (checked dyn indexing breaks int(double))
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrCEL, expr, iss.Err())
	}
	p, err := e.Program(ast)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrCEL, expr, err)
	}
	progCache.Store(kind+expr, p)
	return p, nil
}

// evalCondition evaluates a trigger condition against a task's resolved input parameters,
// seen as inputs.parameter_values as KFP's driver does.
func evalCondition(expr string, params map[string]any) (bool, error) {
	p, err := program("c:", condEnv, expr)
	if err != nil {
		return false, err
	}
	if params == nil {
		params = map[string]any{}
	}
	out, _, err := p.Eval(map[string]any{"inputs": map[string]any{"parameter_values": params}})
	if err != nil {
		return false, fmt.Errorf("%w %q: %v", ErrCEL, expr, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("%w %q: result is %s, not a bool", ErrCEL, expr, out.Type())
	}
	return bool(b), nil
}

// evalSelector applies a parameterExpressionSelector to one value. string_value is the
// value itself when it is a string and its JSON text otherwise.
func evalSelector(expr string, v any) (any, error) {
	p, err := program("s:", selEnv, expr)
	if err != nil {
		return nil, err
	}
	vars := map[string]any{"string_value": "", "number_value": 0.0, "bool_value": false,
		"list_value": []any{}, "struct_value": map[string]any{}, "null_value": nil}
	switch x := v.(type) {
	case string:
		vars["string_value"] = x
	case float64:
		vars["number_value"] = x
	case bool:
		vars["bool_value"] = x
	case []any:
		vars["list_value"] = x
	case map[string]any:
		vars["struct_value"] = x
	}
	if _, isStr := v.(string); !isStr {
		b, _ := json.Marshal(v)
		vars["string_value"] = string(b)
	}
	out, _, err := p.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrCEL, expr, err)
	}
	return celToNative(out)
}

// celToNative converts a CEL value to the JSON-like Go values the engine uses.
func celToNative(v ref.Val) (any, error) {
	switch x := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return float64(x), nil
	case types.Uint:
		return float64(x), nil
	case types.Double:
		return float64(x), nil
	case types.String:
		return string(x), nil
	case *types.Err:
		return nil, x
	}
	if l, ok := v.(traits.Lister); ok {
		n := int(l.Size().(types.Int))
		out := make([]any, 0, n)
		for i := 0; i < n; i++ {
			e, err := celToNative(l.Get(types.Int(i)))
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	if m, ok := v.(traits.Mapper); ok {
		out := map[string]any{}
		it := m.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			e, err := celToNative(m.Get(k))
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k.Value())] = e
		}
		return out, nil
	}
	return v.Value(), nil
}
