#!/usr/bin/env bash
# The GPU benchmarks of benchmarks/README.md, for the day a GPU is lent: one short prepared script, each line
# one JSON object whose ratios were measured in one run. For every task: training of the paper preset at its
# own batch (fp32 against bf16 autocast + channels_last, with the fraction of steps waiting on data), then
# prediction on the GPU against the seeds' way (PyTorch on CUDA; ONNX Runtime's CUDA and TensorRT engines where
# onnxruntime-gpu is installed). Usage: benchmarks/gpu.sh [OUT.jsonl]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/dev/stdout}"
radlab="${RADLAB:-.venv/bin/radlab}"
python="${PYTHON:-.venv/bin/python}"
engines=(--engine torch)
for engine in $("$python" -c "from radlab.core.infer.engines import installed_engines as e; print(*(n for n in e() if n.startswith('onnx-')))"); do
    engines+=(--engine "$engine")
done
{
    for task in mura mrnet pneumonia ich; do
        "$radlab" bench train --task "$task" --device cuda --steps 20 --warmup 3 --repeats 2 --json
    done
    "$radlab" bench infer --task mura --device cuda --json --images 96 --repeats 3 "${engines[@]}"
    "$radlab" bench infer --task mrnet --device cuda --json --images 8 --repeats 3 "${engines[@]}"
    "$radlab" bench infer --task pneumonia --device cuda --json --images 32 --repeats 3 "${engines[@]}"
    "$radlab" bench infer --task ich --device cuda --json --images 32 --repeats 2 "${engines[@]}"
} >"$out"
