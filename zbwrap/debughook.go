package zbwrap

import (
	"github.com/pyzerobus/pyzerobus/zbwrap/debugfiles"
)

// openDebug starts the debug-file writer the configuration asks for, if
// any, and registers it as a hook of the send path: it sees every converted
// batch, in writer-disabled mode too. debug_enabled turns on both outputs.
func (w *Wrapper) openDebug() error {
	c := w.cfg
	arrowOn := c.DebugEnabled || c.DebugArrowEnabled
	// The arrow transport makes no protobuf records: Arrow output only.
	protoOn := (c.DebugEnabled || c.DebugProtobufEnabled) && c.Transport != TransportArrow
	d, err := debugfiles.New(debugfiles.Config{
		Dir:              c.DebugOutputDir,
		Table:            c.TableName,
		Arrow:            arrowOn,
		Protobuf:         protoOn,
		FlushInterval:    c.DebugFlushInterval,
		MaxFileSize:      c.DebugMaxFileSize,
		MaxFilesRetained: max(c.DebugMaxFilesRetained, 0), // 0 keeps all there
		Logger:           w.logger,
		OnError: func(error) {
			if w.tel != nil {
				w.tel.DebugWriteFailed()
			}
		},
	})
	if err != nil {
		return &Error{Kind: KindConfiguration, Op: "config", Setting: "debug", Err: err}
	}
	if d != nil {
		w.debug = d
		w.hooks.encoded = append(w.hooks.encoded, d)
	}
	return nil
}
