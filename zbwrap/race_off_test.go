//go:build !race

package zbwrap

const raceEnabled = false
