package lake

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// goodRow is a valid record of the all-types table.
func goodRow(id int) map[string]any {
	return map[string]any{"id": id, "b": true, "i8": -128, "i16": 32767, "i32": -7, "f": 1.5, "d": 2.25,
		"s": "héllo", "bin": []byte{0, 1}, "day": -719162, "ts": int64(253402300799999999), "ntz": int64(-62135596800000000),
		"dec": "-99999999.99", "v": `{"a":[1,2]}`,
		"tags": []any{"x"}, "scores": map[any]any{"a": 1},
		"inner": map[string]any{"x": 3, "names": []any{"n"}, "m": map[any]any{1: "one"}},
		"items": []any{map[string]any{"k": "k1", "n": 9}}, "nested": []any{[]any{1, 2}}}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestCheck(t *testing.T) {
	l := openLake(t, t.TempDir())
	tb := mustCreate(t, l, "c.s.all", allTypesDDL)
	d := DescriptorFor("Row", tb.Columns())
	b := mustBind(t, l, "c.s.all", d)
	md := msgDesc(t, d)
	good := encode(t, md, goodRow(1))
	if err := b.Check([][]byte{good, encode(t, md, map[string]any{"id": 2})}); err != nil {
		t.Fatalf("valid records: %v", err)
	}
	tag := func(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
	appendRaw := func(rec []byte, parts ...[]byte) []byte {
		out := append([]byte(nil), rec...)
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	badUTF8 := string([]byte{0xff, 0xfe})
	tests := []struct {
		name   string
		rec    []byte
		column string
		want   string
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}, "", "does not decode with the stream's descriptor"},
		{"truncated", good[:len(good)-3], "", "does not decode"},
		{"unknown field", appendRaw(good, tag(99, protowire.VarintType), protowire.AppendVarint(nil, 5)), "", "unknown field number 99 (wire type varint)"},
		{"unknown fixed32", appendRaw(good, tag(98, protowire.Fixed32Type), []byte{1, 2, 3, 4}), "", "unknown field number 98 (wire type fixed32)"},
		{"wrong wire type", appendRaw(good, tag(5, protowire.BytesType), protowire.AppendBytes(nil, []byte("x"))), "i32", "field 5 has wire type length-delimited, which does not match its declared type int32"},
		{"wrong wire type fixed64", appendRaw(good, tag(3, protowire.Fixed64Type), make([]byte, 8)), "i8", "wire type fixed64"},
		{"required missing", encode(t, md, with(goodRow(1), "id", nil)), "id", "NOT NULL column is missing"},
		{"tinyint high", encode(t, md, with(goodRow(1), "i8", 128)), "i8", "value 128 is out of TINYINT range"},
		{"tinyint low", encode(t, md, with(goodRow(1), "i8", -129)), "i8", "out of TINYINT range"},
		{"smallint high", encode(t, md, with(goodRow(1), "i16", 32768)), "i16", "value 32768 is out of SMALLINT range"},
		{"smallint low", encode(t, md, with(goodRow(1), "i16", -32769)), "i16", "out of SMALLINT range"},
		{"date low", encode(t, md, with(goodRow(1), "day", -719163)), "day", "outside the DATE range"},
		{"date high", encode(t, md, with(goodRow(1), "day", 2932897)), "day", "outside the DATE range"},
		{"timestamp high", encode(t, md, with(goodRow(1), "ts", int64(253402300800000000))), "ts", "outside the TIMESTAMP range"},
		{"timestamp_ntz low", encode(t, md, with(goodRow(1), "ntz", int64(-62135596800000001))), "ntz", "outside the TIMESTAMP_NTZ range"},
		{"string not utf8", encode(t, md, with(goodRow(1), "s", badUTF8)), "s", "not valid UTF-8"},
		{"variant not json", encode(t, md, with(goodRow(1), "v", "{oops")), "v", "not valid JSON"},
		{"decimal scale", encode(t, md, with(goodRow(1), "dec", "1.234")), "dec", `"1.234" is not a decimal(10,2) value: more than 2 digits after the decimal point`},
		{"decimal precision", encode(t, md, with(goodRow(1), "dec", "123456789")), "dec", "more than 8 digits before the decimal point"},
		{"decimal text", encode(t, md, with(goodRow(1), "dec", "12,5")), "dec", "unexpected"},
		{"array element", encode(t, md, with(goodRow(1), "tags", []any{"ok", badUTF8})), "tags.element", "not valid UTF-8"},
		{"map key", encode(t, md, with(goodRow(1), "scores", map[any]any{badUTF8: 1})), "scores.key", "not valid UTF-8"},
		{"struct field missing", encode(t, md, with(goodRow(1), "inner", map[string]any{"names": []any{}})), "inner.x", "NOT NULL column is missing"},
		{"struct map value", encode(t, md, with(goodRow(1), "inner", map[string]any{"x": 1, "m": map[any]any{2: badUTF8}})), "inner.m.value", "not valid UTF-8"},
		{"array of struct", encode(t, md, with(goodRow(1), "items", []any{map[string]any{"k": badUTF8}})), "items.element.k", "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Check([][]byte{good, good, tc.rec, good})
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("Check = %v, want *RecordError", err)
			}
			if re.Index != 2 || re.Column != tc.column || !strings.Contains(re.Reason, tc.want) {
				t.Fatalf("Check: index %d column %q reason %q\nwant index 2 column %q reason containing %q", re.Index, re.Column, re.Reason, tc.column, tc.want)
			}
			if tc.column == "" && strings.Contains(err.Error(), "column") {
				t.Errorf("Error() = %q mentions a column", err)
			}
			if tc.column != "" && !strings.HasPrefix(err.Error(), "record 2: column "+tc.column+": ") {
				t.Errorf("Error() = %q", err)
			}
		})
	}

	// An unknown field inside a wrapper message of a nested array.
	wrapped := protowire.AppendTag(nil, 1, protowire.VarintType)
	wrapped = protowire.AppendVarint(wrapped, 4)
	wrapped = protowire.AppendTag(wrapped, 7, protowire.VarintType)
	wrapped = protowire.AppendVarint(wrapped, 1)
	rec := appendRaw(good, tag(19, protowire.BytesType), protowire.AppendBytes(nil, wrapped))
	var re *RecordError
	if err := b.Check([][]byte{rec}); !errors.As(err, &re) || re.Column != "nested.element" || !strings.Contains(re.Reason, "unknown field number 7") {
		t.Fatalf("Check(bad wrapper) = %v", err)
	}

	big := make([]byte, MaxRecordSize+1)
	if err := b.Check([][]byte{big}); !errors.As(err, &re) || !strings.Contains(re.Reason, "more than the limit") {
		t.Fatalf("Check(oversized record) = %v", err)
	}
	if err := <-b.Append([][]byte{good, big}); !errors.As(err, &re) || re.Index != 1 {
		t.Fatalf("Append(oversized record) = %v", err)
	}
}

func TestUnknownFieldMalformed(t *testing.T) {
	md := msgDesc(t, DescriptorFor("R", mustColumns(t, "a int")))
	fe := unknownField(md, []byte{0x80}, "p.")
	if fe == nil || fe.column != "p" || !strings.Contains(fe.reason, "malformed") {
		t.Fatalf("unknownField = %+v", fe)
	}
	for typ, want := range map[protowire.Type]string{protowire.StartGroupType: "group", protowire.EndGroupType: "group", 6: "6"} {
		if got := wireTypeName(typ); got != want {
			t.Errorf("wireTypeName(%d) = %q, want %q", typ, got, want)
		}
	}
}

func TestCheckGroupField(t *testing.T) {
	// A group on the wire for an unknown field number is an unknown field.
	l := openLake(t, t.TempDir())
	tb := mustCreate(t, l, "c.s.t", "a int")
	b := mustBind(t, l, "c.s.t", DescriptorFor("R", tb.Columns()))
	rec := protowire.AppendTag(nil, 5, protowire.StartGroupType)
	rec = protowire.AppendTag(rec, 5, protowire.EndGroupType)
	var re *RecordError
	if err := b.Check([][]byte{rec}); !errors.As(err, &re) || !strings.Contains(re.Reason, "wire type group") {
		t.Fatalf("Check = %v", err)
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in          string
		prec, scale int
		want        string // unscaled value, or "error: ..."
	}{
		{"0", 10, 2, "0"},
		{"-0.00", 10, 2, "0"},
		{"12.34", 10, 2, "1234"},
		{"-12.3", 10, 2, "-1230"},
		{"+5", 10, 2, "500"},
		{".5", 10, 2, "50"},
		{"5.", 10, 2, "500"},
		{"1.500", 10, 2, "150"},
		{"00012.10", 4, 2, "1210"},
		{"99999999.99", 10, 2, "9999999999"},
		{"1e3", 10, 2, "100000"},
		{"1.5E-1", 10, 2, "15"},
		{"-2.5e+2", 10, 0, "-250"},
		{"0e99", 10, 2, "0"},
		{"12345678901234567890123456789012345678", 38, 0, "12345678901234567890123456789012345678"},
		{"-1234567890123456789012345678.9012345678", 38, 10, "-12345678901234567890123456789012345678"},
		{"0.000", 5, 0, "0"},
		{"", 10, 2, "error: no digits"},
		{"-", 10, 2, "error: no digits"},
		{".", 10, 2, "error: no digits"},
		{"1.2.3", 10, 2, "error: unexpected"},
		{" 1", 10, 2, "error: no digits"},
		{"1 ", 10, 2, "error: unexpected"},
		{"1e", 10, 2, "error: bad exponent"},
		{"1e12345", 10, 2, "error: bad exponent"},
		{"NaN", 10, 2, "error: no digits"},
		{"1.005", 10, 2, "error: more than 2 digits after"},
		{"0.001", 10, 2, "error: more than 2 digits after"},
		{"1e-3", 10, 2, "error: more than 2 digits after"},
		{"123456789", 10, 2, "error: more than 8 digits before"},
		{"1e8", 10, 2, "error: more than 8 digits before"},
		{"1e9999", 38, 2, "error: more than 36 digits before"},
		{"123456789012345678901234567890123456789", 38, 0, "error: more than 38 digits before"},
	}
	for _, tc := range tests {
		n, err := parseDecimal(tc.in, tc.prec, tc.scale)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = n.BigInt().String()
		}
		if !strings.HasPrefix(got, "error: ") && got != tc.want || strings.HasPrefix(got, "error: ") != strings.HasPrefix(tc.want, "error: ") ||
			strings.HasPrefix(tc.want, "error: ") && !strings.Contains(got, strings.TrimPrefix(tc.want, "error: ")) {
			t.Errorf("parseDecimal(%q, %d, %d) = %s, want %s", tc.in, tc.prec, tc.scale, got, tc.want)
		}
	}
}
