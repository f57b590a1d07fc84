//go:build zbwrap_nodebughook

package zbwrap

const debugHookCompiled = false
