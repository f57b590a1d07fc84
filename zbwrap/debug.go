package zbwrap

// closeDebug flushes and closes the debug files; a failure is logged by
// the writer and never fails Close.
func (w *Wrapper) closeDebug() {
	if w.debug != nil {
		_ = w.debug.Close()
	}
}
