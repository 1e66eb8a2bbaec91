package engine

import "testing"

func TestEvalCondition(t *testing.T) {
	params := map[string]any{
		"pipelinechannel--num":  7.0,
		"pipelinechannel--coin": "heads",
		"pipelinechannel--ok":   true,
		"pipelinechannel--js":   `{"a": 2}`,
	}
	cases := []struct {
		expr    string
		want    bool
		wantErr bool
	}{
		{"int(inputs.parameter_values['pipelinechannel--num']) > 5", true, false},
		{"double(inputs.parameter_values['pipelinechannel--num']) < 5.5", false, false},
		{"inputs.parameter_values['pipelinechannel--coin'] == 'heads'", true, false},
		{"!(inputs.parameter_values['pipelinechannel--coin'] == 'heads') && inputs.parameter_values['pipelinechannel--coin'] == 'tails'", false, false},
		{"inputs.parameter_values['pipelinechannel--ok'] == true", true, false},
		{"int(parseJson(inputs.parameter_values['pipelinechannel--js'])['a']) == 2", true, false},
		{"inputs.parameter_values['pipelinechannel--coin']", false, true},
		{"inputs.parameter_values['missing'] == 1", false, true},
		{"((", false, true},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			got, err := evalCondition(c.expr, params)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestEvalSelector(t *testing.T) {
	cases := []struct {
		expr string
		in   any
		want any
	}{
		{`parseJson(string_value)["A_a"]`, map[string]any{"A_a": "x", "B_b": 2.0}, "x"},
		{`parseJson(string_value)["B_b"]`, `{"A_a": "x", "B_b": 2}`, 2.0},
		{`struct_value["k"]`, map[string]any{"k": []any{1.0}}, []any{1.0}},
		{`number_value + 1.0`, 2.0, 3.0},
		{`string_value`, "plain", "plain"},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			got, err := evalSelector(c.expr, c.in)
			if err != nil {
				t.Fatal(err)
			}
			if formatParam(got) != formatParam(c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
}
