package zbwrap

import (
	"google.golang.org/protobuf/types/descriptorpb"
)

// A SendOption adjusts one send: SendBatch, Enqueue, Prepare,
// SendBatchAsync, TrySendBatchAsync, SendReader and StartReader all take
// them. The chunk options (WithChunkRows, WithChunkBytes, WithConcurrency,
// WithLimiter) shape how a reader is cut and matter to SendReader and
// StartReader only.
type SendOption func(*sendSettings)

type sendSettings struct {
	desc                     *descriptorpb.DescriptorProto
	rows, bytes, concurrency int
	concurrencySet           bool // else the default, which depends on the Wrapper
	limiter                  *Limiter
}

// sendOptions applies opts to the defaults.
func sendOptions(opts []SendOption) sendSettings {
	set := sendSettings{rows: DefaultChunkRows, bytes: DefaultChunkBytes}
	for _, o := range opts {
		o(&set)
	}
	return set
}

// WithDescriptor sends the rows as records of the message desc instead of
// the one derived from the batch's Arrow schema; desc must match the
// schema (field names, types and nullability; see arrowproto's
// NewSchemaWithDescriptor) and the table. Default nil: derive it. Each
// distinct descriptor is compiled once per schema and gets a stream of its
// own.
func WithDescriptor(desc *descriptorpb.DescriptorProto) SendOption {
	return func(s *sendSettings) { s.desc = desc }
}
