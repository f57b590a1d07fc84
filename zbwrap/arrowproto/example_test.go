package arrowproto_test

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
)

func Example() {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	}, nil)
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(`[
		{"id": 1, "name": "ada", "tags": ["x", "y"]},
		{"id": 2, "name": null, "tags": []},
		{"id": 3, "name": "bob", "tags": ["z", null]}
	]`))
	if err != nil {
		panic(err)
	}
	defer rec.Release()

	cache := arrowproto.NewCache(8, arrowproto.WithMessageName("People"))
	sc, err := cache.Get(rec.Schema())
	if err != nil {
		panic(err)
	}
	for _, f := range sc.Descriptor().GetField() {
		fmt.Printf("field %d: %s %s %s\n", f.GetNumber(), f.GetName(),
			strings.ToLower(strings.TrimPrefix(f.GetLabel().String(), "LABEL_")),
			strings.ToLower(strings.TrimPrefix(f.GetType().String(), "TYPE_")))
	}

	b, err := sc.Encode(rec)
	if err != nil {
		panic(err)
	}
	for i, r := range b.Records {
		fmt.Printf("row %d: %x\n", b.Rows[i], r)
	}
	for _, e := range b.Errors {
		fmt.Println(e)
	}

	// A server decodes the records with the descriptor.
	file, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("people.proto"),
		Syntax:      proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{sc.Descriptor()},
	}, nil)
	if err != nil {
		panic(err)
	}
	msg := dynamicpb.NewMessage(file.Messages().Get(0))
	if err := proto.Unmarshal(b.Records[0], msg); err != nil {
		panic(err)
	}
	fields := msg.Descriptor().Fields()
	fmt.Println(msg.Get(fields.ByName("name")).String(), msg.Get(fields.ByName("tags")).List().Len())
	// Output:
	// field 1: id optional int64
	// field 2: name optional string
	// field 3: tags repeated string
	// row 0: 080112036164611a01781a0179
	// row 1: 0802
	// row 2, column "tags[]": null list element (protobuf repeated fields cannot hold nulls)
	// ada 2
}

func ExampleNewSchemaWithDescriptor() {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "delta", Type: arrow.PrimitiveTypes.Int32},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}},
	}, nil)
	desc := &descriptorpb.DescriptorProto{
		Name: proto.String("Tick"),
		Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("ts"), Number: proto.Int32(4), Type: descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum()},
			{Name: proto.String("delta"), Number: proto.Int32(9), Type: descriptorpb.FieldDescriptorProto_TYPE_SINT32.Enum()},
		},
	}
	sc, err := arrowproto.NewSchemaWithDescriptor(schema, desc)
	if err != nil {
		panic(err)
	}
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(`[{"delta": -1, "ts": 1999}]`))
	if err != nil {
		panic(err)
	}
	defer rec.Release()
	b, err := sc.Encode(rec)
	if err != nil {
		panic(err)
	}
	// Field 9 as sint32 (-1 zigzags to 1), field 4 as int64 microseconds (1999 ns floors to 1 us).
	fmt.Printf("%x\n", b.Records[0])
	// Output: 48012001
}
