// Package debugfiles writes what the engine sends to local files, to see
// exactly what went in and what came out of the conversion: the input Arrow
// batches, the encoded protobuf records and their descriptor.
//
// # Files
//
// Under <Dir>/zerobus, for a table T:
//
//	arrow/T.arrows         the input batches, one Arrow IPC stream per file
//	proto/T.pb             the encoded records, each prefixed with its length as a varint
//	descriptors/T.desc     a FileDescriptorSet holding the record descriptor
//
// The Arrow file is a stream with its schema once at the start, ended with
// the end-of-stream marker when it rotates and on Close; a batch of another
// schema rotates it. Until then it reads as a stream that ends after the
// last batch written, which Arrow readers accept. Records of a row that
// failed to convert are not in the protobuf file; its row is in the Arrow
// file.
//
// The descriptor file is written with the first batch and rewritten,
// atomically (a temporary file renamed over it), when the descriptor
// changes. It holds one proto2 FileDescriptorProto named "T.proto", without
// a package, whose message is the record descriptor as the engine produced
// it. A protobuf file holds records of one descriptor: a new descriptor
// rotates it, and each rotated protobuf file has its descriptor set beside
// the others under the same stem (descriptors/T.<stamp>.<seq>.desc).
//
// # Rotation and retention
//
// A file rotates when the bytes written to it reach MaxFileSize: a batch
// that would not fit in a non-empty file starts the next one, so a file is
// larger than MaxFileSize only when a single batch is. The rotated file is
// renamed to
//
//	T.20261127T101500.123Z.000042.arrows
//
// with the UTC time of the rotation to the millisecond and a 6-digit
// sequence number that wraps around. Names of one table sort in the order
// the files were written and never grow. A table name that is not made of
// ASCII letters, digits, '.', '_' and '-', or whose rotated names would be
// longer than 255 bytes, is changed deterministically: other bytes become
// '_', it is cut to fit, and "-" and 16 hex digits of the SHA-256 of the
// table name are appended. pyzerobus.debug computes the same names.
//
// MaxFilesRetained keeps the newest N rotated files of each type (0 keeps
// all) and removes the older ones after each rotation. Only names of exactly
// the rotated form of this table are considered: other tables' files and
// anything else in the directories are never touched.
//
// A non-empty active file left by an earlier Writer is rotated before the
// first batch of a new one, so nothing is overwritten.
//
// # Buffering and failures
//
// Each batch is encoded into memory whole, then appended to a buffer that is
// written to the file in one call when it reaches 1 MiB, when the file
// rotates, on Flush and Close, and every FlushInterval (default 5 s) from a
// goroutine the Writer owns: a file is readable up to its last batch within
// an interval of the batch's send, with no further sends. Files are not
// fsynced. Files are created with mode 0600 (they hold the data sent),
// directories with 0755.
//
// A failure never reaches the send path and never panics: OnBatchEncoded
// returns normally, the failure is logged (Config.Logger, level Warn),
// counted (Stats.WriteErrors) and passed to Config.OnError as an *Error. The
// file is cut back to its last complete batch, ended and rotated, so readers
// never see half a batch; the buffered batches are dropped
// (Stats.BatchesDropped), and so are new ones until the next tick, when the
// Writer tries again with a new file. A directory that cannot be written
// costs one attempt per file type per interval. Should a file not even be cut
// back, it is set aside under its rotated name with "~" appended, which
// readers and retention ignore.
//
// # Concurrency and cost
//
// Any number of goroutines may call OnBatchEncoded at once. Each file type
// has its own lock, held while a batch is encoded into the buffer, so a
// batch's bytes are contiguous in each file and batches appear in the order
// the calls took the lock. Off (both flags false) there is no Writer at all:
// New returns nil, and the methods of a nil *Writer do nothing.
//
// # Reading the files
//
// Go: ipc.NewReader on a .arrows file; protowire.ConsumeVarint to split a
// .pb file and protodesc.NewFiles with dynamicpb to decode it. Python:
// pyzerobus.debug.read_arrow and read_protobuf return pyarrow Tables of all
// files of a table, oldest first, which DuckDB queries directly.
package debugfiles
