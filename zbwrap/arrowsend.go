package zbwrap

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/flightstream"
)

// The arrow transport's side of the send path: batches are encoded as
// Arrow IPC messages (flightstream) instead of protobuf records. There are
// no per-row conversion errors: a batch the table cannot take (a column
// missing, of another type) is refused by the server as a whole, with the
// column named.

// arrowTransport reports whether batches go as Arrow (transport: arrow).
func (w *Wrapper) arrowTransport() bool { return w.cfg.Transport == TransportArrow }

// arrowKeyPrefix sets the keys of Arrow streams apart from descriptors.
const arrowKeyPrefix = "arrow\x00"

// encodeArrow is convert for the arrow transport.
func (w *Wrapper) encodeArrow(req sendRequest, sub *submission) (*submission, *target, error) {
	rec, sp := req.rec, req.span
	if req.desc != nil {
		return nil, nil, &Error{Kind: KindConfiguration, Op: "send", Setting: "transport",
			Msg: "a protobuf descriptor (WithDescriptor) applies to the proto transport only; the arrow transport sends the batch's Arrow schema"}
	}
	// View layouts (string_view, binary_view, as polars makes them) go as
	// the plain ones the table takes.
	norm := flightstream.Normalize(rec)
	defer norm.Release()
	enc, err := w.encoderFor(norm)
	if err == nil {
		sub.arrow, err = enc.Encode(norm)
	}
	if sp != nil {
		if err != nil {
			sp.Encoded(sub.start, 0, sub.rows, err)
		} else {
			sp.Encoded(sub.start, sub.arrow.Bytes, 0, nil)
		}
	}
	if err != nil {
		sub.convErr = &Error{Kind: KindConversion, Op: "encode", Err: err}
		return sub, nil, nil
	}
	for _, h := range w.hooks.encoded {
		h.OnBatchEncoded(rec, nil, nil)
	}
	if w.cfg.ZerobusWriterDisabled || sub.rows == 0 {
		return sub, nil, nil
	}
	return sub, &target{key: arrowKeyPrefix + norm.Schema().Fingerprint(), enc: enc}, nil
}

// encoderFor returns the encoder of rec's schema, made on first use.
func (w *Wrapper) encoderFor(rec arrow.RecordBatch) (*flightstream.Encoder, error) {
	sc := rec.Schema()
	key := sc.Fingerprint()
	w.mu.Lock()
	e := w.encoders[key]
	w.mu.Unlock()
	if e != nil {
		return e, nil
	}
	e, err := flightstream.NewEncoder(sc, flightstream.Compression(w.cfg.ArrowCompression), w.cfg.MaxRequestBytes)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	if len(w.encoders) >= schemaCacheSize {
		clear(w.encoders)
	}
	w.encoders[key] = e
	w.mu.Unlock()
	return e, nil
}

// arrowOutcomes fills res from the outcomes of an Arrow batch: their
// ranges are rows.
func (w *Wrapper) arrowOutcomes(sub *submission, res *TransmissionResult) {
	res.BatchSizeBytes = sub.arrow.Bytes
	if sub.sb == nil {
		res.SuccessfulRows = make([]int, sub.rows)
		for i := range res.SuccessfulRows {
			res.SuccessfulRows[i] = i
		}
		return
	}
	res.SuccessfulRows = make([]int, 0, sub.rows)
	for _, o := range sub.sb.Outcomes() {
		res.Attempts = max(res.Attempts, o.Attempts)
		if o.Err == nil {
			for row := o.Start; row < o.End; row++ {
				res.SuccessfulRows = append(res.SuccessfulRows, row)
			}
			continue
		}
		e := fromStream("send", o.Err)
		for row := o.Start; row < o.End; row++ {
			res.FailedRows = append(res.FailedRows, FailedRow{Index: row, Error: e, MayHaveLanded: o.MayHaveLanded})
		}
	}
}
