# Shared by the scripts: configure and build one build tree.
# Usage: configure_and_build BUILD_DIR [cmake options...]   (configure_tree: the same, without building)
set -euo pipefail

UNIMEM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNIMEM_JOBS="${UNIMEM_JOBS:-$(nproc)}"
# Two PoCL devices, so that multi-device paths run on a CPU-only machine.
export POCL_DEVICES="${POCL_DEVICES:-pthread pthread}"

configure_tree() {
  local dir="$1"
  shift
  local launcher=()
  if command -v ccache >/dev/null 2>&1; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  cmake -S "$UNIMEM_ROOT" -B "$dir" -G Ninja "${launcher[@]}" "$@" >/dev/null
}

configure_and_build() {
  configure_tree "$@"
  cmake --build "$1" --parallel "$UNIMEM_JOBS"
}

# ctest lists skipped tests by name only; print each distinct reason gtest gave, with how many tests gave it.
summarize_skips() {
  local log="$1/Testing/Temporary/LastTest.log"
  [ -f "$log" ] || return 0
  local reasons
  reasons=$(grep -A1 ': Skipped$' "$log" | grep -v -e ': Skipped$' -e '^--$' | sort | uniq -c | sort -rn || true)
  if [ -n "$reasons" ]; then
    echo "Skipped tests, by reason:"
    echo "$reasons"
  fi
}
