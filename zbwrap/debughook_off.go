//go:build zbwrap_nodebughook

package zbwrap

const debugHookCompiled = false

// openDebug does nothing in this build: no debug files.
func (w *Wrapper) openDebug() error { return nil }
