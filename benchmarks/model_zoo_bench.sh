#!/usr/bin/env bash
# Every listed model, one training rank on one thread, ours and PyTorch's interleaved model by
# model (so the machine's noise hits both alike), each in a process of its own so peak RSS is
# that model's: at the model's default input size and at 64 px (75 px for InceptionResNetV2,
# the least its pooling allows). Prints one markdown table row per (model, size).
#
#   benchmarks/model_zoo_bench.sh [PYTHON] [STEPS] [BATCH_DEFAULT] [BATCH_SMALL]
#   e.g. benchmarks/model_zoo_bench.sh /work/torchvenv/bin/python 3 16 32
set -euo pipefail
python=${1:-python3}
steps=${2:-3}
batch_default=${3:-16}
batch_small=${4:-32}
here=$(cd "$(dirname "$0")" && pwd)
binary=${SWIFT_DP_TRAIN_BINARY:-$here/../.build/release/swift-dp-train}

echo "| model | input | batch | ours images/s | ours peak RSS | PyTorch images/s | PyTorch peak RSS (after import) | ours ÷ PyTorch |"
echo "|---|---|---|---|---|---|---|---|"
"$binary" models | tail -n +2 | while read -r model _ size; do
    default=${size%%×*}
    small=64; [ "$model" = inception_resnet_v2 ] && small=75
    for pair in "$default:$batch_default" "$small:$batch_small"; do
        s=${pair%%:*}; b=${pair##*:}
        ours=$("$binary" bench --model "$model" --image-size "$s" --batch-size "$b" --steps "$steps" --warmup 1 --threads 1)
        theirs=$("$python" "$here/pytorch_train_bench.py" "$model:$s:$b" --steps "$steps" --warmup 1 --threads 1)
        ours_ips=$(sed -E 's/.*: ([0-9.]+) images\/s.*/\1/' <<<"$ours")
        ours_rss=$(sed -E 's/.*peak RSS ([0-9]+) MB.*/\1/' <<<"$ours")
        their_ips=$(sed -E 's/.*: ([0-9.]+) images\/s.*/\1/' <<<"$theirs")
        their_rss=$(sed -E 's/.*peak RSS ([0-9]+) MB \(([0-9]+) MB after import\).*/\1 (\2)/' <<<"$theirs")
        ratio=$(awk -v a="$ours_ips" -v b="$their_ips" 'BEGIN { printf "%.2f×", a / b }')
        echo "| $model | $s | $b | $ours_ips | $ours_rss MB | $their_ips | $their_rss MB | $ratio |"
    done
done
