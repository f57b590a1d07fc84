package bindings

// The code gopy generates for this package imports gopyh, so go.mod must
// require it, at the version of gopy in internal/tools/go.mod.
import _ "github.com/go-python/gopy/gopyh"
