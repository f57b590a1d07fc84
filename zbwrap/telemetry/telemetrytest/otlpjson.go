package telemetrytest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// OTLP/JSON is protojson with two differences that matter here: trace and
// span ids are hex strings, not base64, and enums are written as numbers.
// Both functions below go through a generic JSON tree to rewrite the ids.

// MarshalJSON encodes an OTLP message as OTLP/JSON on one line: protojson
// field names (lowerCamelCase), enums as numbers, 64-bit integers as
// strings, and traceId, spanId and parentSpanId as lowercase hex.
func MarshalJSON(m proto.Message) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseEnumNumbers: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("telemetrytest: marshal %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return rewriteIDs(b, base64ToHex)
}

// UnmarshalJSON decodes OTLP/JSON into m. Ids may be hex (OTLP/JSON) or
// base64 (plain protojson); enums may be numbers or names; unknown fields
// are ignored, as OTLP asks of receivers.
func UnmarshalJSON(b []byte, m proto.Message) error {
	b, err := rewriteIDs(b, hexToBase64)
	if err == nil {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, m)
	}
	if err != nil {
		return fmt.Errorf("telemetrytest: unmarshal %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

func rewriteIDs(b []byte, conv func(string) (string, bool)) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep integers exact
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	walkIDs(tree, conv)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tree); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

func walkIDs(v any, conv func(string) (string, bool)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && isIDField(k) {
				if c, ok := conv(s); ok {
					v[k] = c
				}
				continue
			}
			walkIDs(x, conv)
		}
	case []any:
		for _, x := range v {
			walkIDs(x, conv)
		}
	}
}

func isIDField(k string) bool {
	switch k {
	case "traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id":
		return true
	}
	return false
}

func base64ToHex(s string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	return hex.EncodeToString(b), err == nil
}

// hexToBase64 converts only 8- and 16-byte ids: base64 of those lengths
// always ends in '=', so it is never mistaken for hex.
func hexToBase64(s string) (string, bool) {
	if len(s) != 16 && len(s) != 32 {
		return "", false
	}
	b, err := hex.DecodeString(s)
	return base64.StdEncoding.EncodeToString(b), err == nil
}
