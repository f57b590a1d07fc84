package zbwrap

import (
	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
)

// schemaFor compiles (or finds) the schema of a batch.
func (w *Wrapper) schemaFor(sc *arrow.Schema, desc *descriptorpb.DescriptorProto) (*arrowproto.Schema, error) {
	if desc == nil {
		return w.cache.Get(sc)
	}
	db, err := proto.MarshalOptions{Deterministic: true}.Marshal(desc)
	if err != nil {
		return nil, err
	}
	key := sc.Fingerprint() + "\x00" + string(db)
	w.mu.Lock()
	s := w.described[key]
	w.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err = arrowproto.NewSchemaWithDescriptor(sc, desc)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	if len(w.described) >= schemaCacheSize {
		clear(w.described)
	}
	w.described[key] = s
	w.mu.Unlock()
	return s, nil
}
