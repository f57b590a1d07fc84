# Statement coverage per file from a Go cover profile (go test -coverprofile).
# Usage: awk -f tools/cover/perfile.awk cover.out
# A block can appear once per test binary that covers it: count it once,
# covered if any binary covered it.
NR == 1 { next }
{
	split($1, loc, ":")
	file = loc[1]
	key = $1
	if (!(key in stmts)) {
		stmts[key] = $2
		total[file] += $2
	}
	if ($3 > 0 && !(key in hit)) {
		hit[key] = 1
		covered[file] += $2
	}
}
END {
	for (f in total) {
		pct = total[f] ? 100 * covered[f] / total[f] : 100
		printf "%6.1f%%  %s%s\n", pct, f, (pct < 90 ? "   (below 90%)" : "")
	}
}
