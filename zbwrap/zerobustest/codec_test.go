package zerobustest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
)

func tagBytes(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
}

func tagVarint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// batchMsg is an ingest_record_batch payload with proto records.
func batchMsg(off uint64, recs ...string) []byte {
	var inner []byte
	for _, r := range recs {
		inner = append(inner, tagBytes(1, []byte(r))...)
	}
	return tagBytes(3, cat(tagVarint(1, off), tagBytes(2, inner)))
}

func TestInboundParse(t *testing.T) {
	jsonBatch := tagBytes(3, cat(tagVarint(1, 4), tagBytes(3, cat(tagBytes(1, []byte(`{"a":1}`)), tagBytes(1, []byte(`{"a":2}`))))))
	tests := []struct {
		name    string
		msg     []byte
		kind    payloadKind
		offset  int64
		records []string
		json    bool
		errText string
	}{
		{"batch", batchMsg(3, "a", "bb"), payloadBatch, 3, []string{"a", "bb"}, false, ""},
		{"repeated batch fields merge", cat(batchMsg(1, "a"), batchMsg(2, "b")), payloadBatch, 2, []string{"a", "b"}, false, ""},
		{"last payload wins", cat(tagBytes(2, cat(tagVarint(1, 9), tagBytes(2, []byte("r")))), batchMsg(1, "x")), payloadBatch, 1, []string{"x"}, false, ""},
		{"record then record", cat(tagBytes(2, cat(tagVarint(1, 5), tagBytes(2, []byte("r1")), tagBytes(3, []byte("j2"))))), payloadRecord, 5, []string{"j2"}, true, ""},
		{"json batch", jsonBatch, payloadBatch, 4, []string{`{"a":1}`, `{"a":2}`}, true, ""},
		{"json member replaces proto member", cat(batchMsg(1, "p"), tagBytes(3, tagBytes(3, tagBytes(1, []byte("j"))))), payloadBatch, 1, []string{"j"}, true, ""},
		{"unknown fields skipped", cat(tagVarint(9, 1), tagBytes(3, cat(tagVarint(7, 1), tagVarint(1, 2), tagBytes(2, cat(tagVarint(5, 1), tagBytes(1, []byte("r"))))))), payloadBatch, 2, []string{"r"}, false, ""},
		{"create", tagBytes(1, tagBytes(1, []byte(testTable))), payloadCreate, 0, nil, false, ""},
		{"create merges", cat(tagBytes(1, tagBytes(1, []byte("x"))), tagBytes(1, tagVarint(4, 1))), payloadCreate, 0, nil, false, ""},
		{"empty", nil, payloadNone, 0, nil, false, ""},
		{"bad tag", []byte{0x80}, payloadNone, 0, nil, false, "malformed request"},
		{"bad length", []byte{0x1a, 0x05, 0x08}, payloadNone, 0, nil, false, "malformed request"},
		{"bad varint", cat(protowire.AppendTag(nil, 3, protowire.BytesType), []byte{0x02, 0x08, 0x80}), payloadBatch, 0, nil, false, "malformed ingest_record_batch"},
		{"bad unknown field", cat(protowire.AppendTag(nil, 9, protowire.BytesType), []byte{0x05}), payloadNone, 0, nil, false, "malformed request"},
		{"bad create", tagBytes(1, []byte{0x0a, 0x05}), payloadCreate, 0, nil, false, "malformed create_stream"},
		{"group wire type", protowire.AppendTag(nil, 2, protowire.StartGroupType), payloadNone, 0, nil, false, "field 2 has wire type 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, keep := range []bool{false, true} {
				in := &inbound{keep: keep}
				in.load(mem.BufferSlice{mem.SliceBuffer(tc.msg)})
				if tc.errText != "" {
					if in.err == nil || !strings.Contains(in.err.Error(), tc.errText) {
						t.Fatalf("keep=%v: error %v, want %q", keep, in.err, tc.errText)
					}
					continue
				}
				if in.err != nil {
					t.Fatalf("keep=%v: %v", keep, in.err)
				}
				if in.kind != tc.kind || in.offset != tc.offset || in.n != len(tc.records) || (in.n > 0 && in.json != tc.json) {
					t.Fatalf("keep=%v: kind %d offset %d n %d json %v", keep, in.kind, in.offset, in.n, in.json)
				}
				if keep {
					for i, r := range tc.records {
						if string(in.records[i]) != r {
							t.Fatalf("record %d = %q, want %q", i, in.records[i], r)
						}
					}
				} else if len(in.records) != 0 {
					t.Fatal("discard mode kept records")
				}
			}
		})
	}
}

func TestInboundSplitBuffersAndLimits(t *testing.T) {
	big := strings.Repeat("z", MaxRecordBytes+1)
	msg := batchMsg(0, "a", big, "c", big)
	// gRPC hands over messages in several buffers.
	split := mem.BufferSlice{mem.SliceBuffer(msg[:7]), mem.SliceBuffer(msg[7:100]), mem.SliceBuffer(msg[100:])}
	for _, keep := range []bool{false, true} {
		in := &inbound{keep: keep}
		in.load(split)
		if in.err != nil || in.n != 4 || in.bigIndex != 1 || in.bigSize != len(big) {
			t.Fatalf("keep=%v: n %d big %d/%d err %v", keep, in.n, in.bigIndex, in.bigSize, in.err)
		}
		in.load(mem.BufferSlice{mem.SliceBuffer(batchMsg(1, "q"))}) // reuse
		if in.n != 1 || in.bigIndex != -1 || in.offset != 1 {
			t.Fatalf("keep=%v: reuse n %d big %d", keep, in.n, in.bigIndex)
		}
	}
	in := &inbound{}
	huge := make([]byte, MaxRequestBytes+1)
	in.load(mem.BufferSlice{mem.SliceBuffer(huge)})
	if in.size != MaxRequestBytes+1 || in.kind != payloadNone || in.err != nil {
		t.Fatal("an oversized request was decoded")
	}
}

func TestServerCodec(t *testing.T) {
	var c serverCodec
	if c.Name() != "proto" {
		t.Fatal(c.Name())
	}
	if _, err := c.Marshal(42); err == nil {
		t.Fatal("marshalled an int")
	}
	if err := c.Unmarshal(nil, 42); err == nil {
		t.Fatal("unmarshalled into an int")
	}
	resp := &wire.EphemeralStreamResponse{Payload: &wire.EphemeralStreamResponse_CreateStreamResponse{
		CreateStreamResponse: &wire.CreateIngestStreamResponse{StreamId: proto.String("id")}}}
	data, err := c.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var back wire.EphemeralStreamResponse
	if err := c.Unmarshal(data, &back); err != nil || back.GetCreateStreamResponse().GetStreamId() != "id" {
		t.Fatalf("round trip: %v %v", &back, err)
	}
	if _, err := c.Marshal(structpb.NewStringValue("\xff")); err == nil {
		t.Fatal("marshalled invalid UTF-8 of a proto3 string without complaint")
	}
}

func TestParseCreateUnknownRecordType(t *testing.T) {
	cr := &wire.CreateIngestStreamRequest{TableName: proto.String(testTable)}
	cr.ProtoReflect().SetUnknown(cat(tagBytes(9, []byte("x")), tagVarint(4, 4)))
	_, _, err := parseCreate(cr, true)
	wantCode(t, err, codes.Unimplemented, "record_type 4")
	for _, junk := range [][]byte{{0x80}, cat(protowire.AppendTag(nil, 9, protowire.BytesType), []byte{0x09})} {
		if _, ok := unknownVarint(junk, 4); ok {
			t.Fatalf("found a field in %x", junk)
		}
	}
}

func TestBearer(t *testing.T) {
	for hdr, want := range map[string]string{
		"Bearer abc":   "abc",
		"bearer   abc": "abc",
		"BEARER abc ":  "abc",
		"Bearer ":      "",
		"Basic abc":    "",
		"abc":          "",
	} {
		got, ok := bearer(metadata.Pairs("authorization", hdr))
		if got != want || ok != (want != "") {
			t.Errorf("bearer(%q) = %q, %v", hdr, got, ok)
		}
	}
}

// splitFrames cuts msg into buffers of n bytes, as gRPC hands over a
// message received in HTTP/2 frames.
func splitFrames(msg []byte, n int) mem.BufferSlice {
	var out mem.BufferSlice
	for len(msg) > 0 {
		k := min(n, len(msg))
		out = append(out, mem.SliceBuffer(msg[:k]))
		msg = msg[k:]
	}
	return out
}

// BenchmarkInboundLoad decodes a 1,000-record batch of 1 KB records as
// gRPC hands it over: in 16 KiB frames.
func BenchmarkInboundLoad(b *testing.B) {
	recs := make([]string, 1000)
	for i := range recs {
		recs[i] = strings.Repeat("r", 1024)
	}
	msg := batchMsg(7, recs...)
	data := splitFrames(msg, 16<<10)
	for _, keep := range []bool{false, true} {
		b.Run(map[bool]string{false: "discard", true: "storage"}[keep], func(b *testing.B) {
			in := &inbound{keep: keep}
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				in.load(data)
				if in.err != nil || in.n != len(recs) {
					b.Fatalf("n %d err %v", in.n, in.err)
				}
				in.records = in.records[:0]
			}
		})
	}
}

// TestInboundParseAnySplit decodes every message of TestInboundParse-like
// cases cut into buffers at every pair of points: the result (or the error)
// must be that of the message in one buffer.
func TestInboundParseAnySplit(t *testing.T) {
	long := strings.Repeat("L", 300) // a two-byte length
	msgs := map[string][]byte{
		"batch":          batchMsg(3, "a", "bb", long, ""),
		"merged batches": cat(batchMsg(1, "a"), batchMsg(2, long)),
		"big offset":     batchMsg(1<<40, "x", "y"),
		"json":           tagBytes(3, cat(tagVarint(1, 4), tagBytes(3, cat(tagBytes(1, []byte(`{"a":1}`)), tagBytes(1, []byte(long)))))),
		"record":         tagBytes(2, cat(tagVarint(1, 5), tagBytes(2, []byte(long)))),
		"create":         tagBytes(1, tagBytes(1, []byte(testTable))),
		"unknown fields": cat(protowire.AppendFixed32(protowire.AppendTag(nil, 9, protowire.Fixed32Type), 7), tagVarint(20, 1<<35),
			tagBytes(3, cat(protowire.AppendFixed64(protowire.AppendTag(nil, 7, protowire.Fixed64Type), 1), tagVarint(1, 2),
				tagBytes(2, cat(tagVarint(5, 1), tagBytes(1, []byte("r")), tagBytes(16, []byte("u")), tagBytes(1, []byte(long))))))),
		"unknown group":      cat(protowire.AppendTag(nil, 9, protowire.StartGroupType), tagVarint(1, 3), protowire.AppendTag(nil, 9, protowire.EndGroupType), batchMsg(0, "g")),
		"non-minimal length": tagBytes(3, cat(tagVarint(1, 1), tagBytes(2, []byte{0x0a, 0x81, 0x00, 'z'}))),
		// Errors.
		"truncated record":    tagBytes(3, cat(tagVarint(1, 1), tagBytes(2, []byte{0x0a, 0x05, 'a'}))),
		"truncated length":    tagBytes(3, cat(tagVarint(1, 1), tagBytes(2, []byte{0x0a, 0x85}))),
		"overlong varint":     tagBytes(3, append([]byte{0x08}, bytes.Repeat([]byte{0xff}, 11)...)),
		"record as varint":    tagBytes(3, cat(tagVarint(1, 1), tagBytes(2, tagVarint(1, 4)))),
		"json record varint":  tagBytes(3, cat(tagVarint(1, 1), tagBytes(3, tagVarint(1, 4)))),
		"field zero":          tagBytes(3, cat(tagVarint(1, 1), tagBytes(2, []byte{0x00, 0x01}))),
		"bad unknown bytes":   tagBytes(3, cat(tagVarint(1, 1), tagBytes(2, []byte{0x12, 0x09, 'q'}))),
		"bad unknown varint":  cat(protowire.AppendTag(nil, 9, protowire.VarintType), []byte{0x80}),
		"bad unknown length":  cat(protowire.AppendTag(nil, 9, protowire.BytesType), []byte{0x80}),
		"bad unknown fixed":   cat(protowire.AppendTag(nil, 9, protowire.Fixed64Type), []byte{1, 2}),
		"reserved wire type":  []byte{9<<3 | 7},
		"truncated top field": []byte{0x1a, 0x85},
	}
	for name, msg := range msgs {
		t.Run(name, func(t *testing.T) {
			whole := &inbound{}
			whole.load(mem.BufferSlice{mem.SliceBuffer(msg)})
			for i := 0; i <= len(msg); i++ {
				for j := i; j <= len(msg); j++ {
					in := &inbound{}
					// Empty buffers included: gRPC may hand over one.
					in.load(mem.BufferSlice{mem.SliceBuffer(msg[:i]), mem.SliceBuffer(msg[i:j]), mem.SliceBuffer(msg[j:])})
					if fmt.Sprint(in.err) != fmt.Sprint(whole.err) || in.kind != whole.kind || in.offset != whole.offset ||
						in.hasOffset != whole.hasOffset || in.hasData != whole.hasData || in.json != whole.json ||
						in.n != whole.n || in.bigIndex != whole.bigIndex {
						t.Fatalf("split %d/%d: %+v, in one buffer %+v", i, j, in, whole)
					}
				}
			}
			if strings.HasPrefix(name, "truncated") || strings.HasPrefix(name, "bad") || strings.HasPrefix(name, "over") ||
				strings.Contains(name, "as varint") || strings.Contains(name, "record varint") || name == "field zero" || name == "reserved wire type" {
				if whole.err == nil {
					t.Fatal("no error")
				}
			} else if whole.err != nil {
				t.Fatal(whole.err)
			}
		})
	}
}

func TestInboundRecordCounts(t *testing.T) {
	long := strings.Repeat("L", 300)
	for _, tc := range []struct {
		name string
		msg  []byte
		n    int
		off  int64
	}{
		{"batch", batchMsg(3, "a", "bb", long, ""), 4, 3},
		{"unknown fields", cat(tagVarint(20, 1<<35), tagBytes(3, cat(tagVarint(1, 2), tagBytes(2, cat(tagBytes(1, []byte("r")), tagBytes(16, []byte("u")), tagBytes(1, []byte(long))))))), 2, 2},
		{"unknown group", cat(protowire.AppendTag(nil, 9, protowire.StartGroupType), tagVarint(1, 3), protowire.AppendTag(nil, 9, protowire.EndGroupType), batchMsg(0, "g")), 1, 0},
		{"non-minimal length", tagBytes(3, cat(tagVarint(1, 1), tagBytes(2, []byte{0x0a, 0x81, 0x00, 'z'}))), 1, 1},
	} {
		for _, split := range []int{1, 2, 3, 16} {
			in := &inbound{}
			in.load(splitFrames(tc.msg, split))
			if in.err != nil || in.n != tc.n || in.offset != tc.off || in.kind != payloadBatch {
				t.Fatalf("%s in %d-byte buffers: n %d offset %d err %v", tc.name, split, in.n, in.offset, in.err)
			}
		}
	}
}
