package client

import "encoding/json"

// jsonRaw is a JSON value kept for later decoding.
type jsonRaw json.RawMessage

func (r *jsonRaw) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

func (r jsonRaw) decode(v any) error { return json.Unmarshal(r, v) }
