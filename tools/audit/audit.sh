#!/usr/bin/env bash
# make audit: known vulnerabilities in what pyzerobus builds on.
#
#   govulncheck ./...   the Go modules, reporting only vulnerable symbols the
#                       engine, the bindings and the commands reach (not tests)
#   pip-audit           the pinned Python requirements (requirements-*.txt:
#                       pyarrow and protobuf, which pyzerobus depends on, and
#                       the tools), as pinned, without installing anything;
#                       --strict: a requirement it cannot look up fails it
#
# Each runs only where its database answers within a few seconds (a machine
# may have no route to it, or only a mirror of PyPI's project pages: pip-audit
# reads the per-release ones); otherwise the line says which was skipped and
# why, and the audit does not fail for it. A vulnerability found fails it.
#
#   tools/audit/audit.sh GOVULNCHECK PYTHON
#
# GOVULNDB and PIP_AUDIT_URL name the databases probed (defaults below).
set -uo pipefail

GOVULNCHECK=${1:?usage: $0 GOVULNCHECK PYTHON}
PY=${2:?usage: $0 GOVULNCHECK PYTHON}
GOVULNDB=${GOVULNDB:-https://vuln.go.dev}
PIP_AUDIT_URL=${PIP_AUDIT_URL:-https://pypi.org/pypi/pip-audit/2.10.1/json}

reachable() {
	"$PY" - "$1" <<'PYEOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=5).read(1)
PYEOF
}

status=0
if reachable "$GOVULNDB/index/db.json"; then
	echo "== govulncheck ./... (database $GOVULNDB)"
	GOVULNDB=$GOVULNDB "$GOVULNCHECK" ./... || status=1
else
	echo "== govulncheck skipped: ${GOVULNDB#https://} unreachable"
fi
if reachable "$PIP_AUDIT_URL"; then
	echo "== pip-audit requirements-*.txt (vulnerability service: PyPI)"
	# Installed only here, so that an offline make lint needs nothing new.
	"$PY" -m pip install -q -r requirements-audit.txt || exit 1
	"$PY" -m pip_audit --strict --no-deps --disable-pip --progress-spinner off \
		-r requirements-dev.txt -r requirements-wheel.txt -r requirements-audit.txt || status=1
else
	echo "== pip-audit skipped: ${PIP_AUDIT_URL#https://} unreachable (PyPI's per-release JSON)"
fi
exit $status
