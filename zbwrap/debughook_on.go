//go:build !zbwrap_nodebughook

package zbwrap

// debugHookCompiled is false only in the zbwrap_nodebughook build, which
// leaves the debug-file hook out of the send path; benchmarks compare the two
// builds to show what the hook costs when debug files are off.
const debugHookCompiled = true
