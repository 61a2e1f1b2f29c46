#!/usr/bin/env bash
# The CPU benchmarks of benchmarks/README.md: each prints one JSON object whose ratios were measured in
# one run (reference and radlab interleaved on the same synthetic inputs). Usage: benchmarks/cpu.sh [OUT.jsonl]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/dev/stdout}"
radlab="${RADLAB:-.venv/bin/radlab}"
{
    "$radlab" bench prep --task mura --json
    "$radlab" bench prep --task ich --json
    "$radlab" bench prep --task pneumonia --json --images 100
    "$radlab" bench infer --task mura --json --images 48 --repeats 3
    "$radlab" bench infer --task mrnet --json --images 4 --repeats 3
    "$radlab" bench infer --task pneumonia --json --images 8 --repeats 3
    "$radlab" bench infer --task ich --json --images 4 --repeats 1
    for task in mura mrnet pneumonia ich; do
        "$radlab" bench train --task "$task" --json --steps 3 --warmup 1
    done
    "${PYTHON:-.venv/bin/python}" benchmarks/int8_recipes.py --task mura
} >"$out"
