#!/usr/bin/env bash
# Retrains the reply classifier's model (src/domain/reply/model.tsv) on the development corpora:
# the project's own corpus and the blind development part, never the held-out part. The
# training is deterministic: on the same corpus it writes the same file, byte for byte.
#   scripts/train_classifier.sh            # train and write the model
#   scripts/train_classifier.sh --folds 5  # also report 5-fold cross-validation (rules + model)
#   scripts/train_classifier.sh --check    # fail if the shipped model is not what the corpus gives
set -euo pipefail
cd "$(dirname "$0")/.."
files=(tests/corpus/replies.tsv tests/corpus/blind/dev/*.tsv)
cargo build --release --quiet --features train
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp)
  trap 'rm -f "$out"' EXIT
  target/release/rappel train-classifier "${files[@]}" --out "$out" >/dev/null
  if ! cmp -s "$out" src/domain/reply/model.tsv; then
    echo "src/domain/reply/model.tsv is not the model the development corpus gives: run scripts/train_classifier.sh"
    exit 1
  fi
  echo "the shipped model is the one the development corpus gives"
  exit 0
fi
target/release/rappel train-classifier "${files[@]}" "$@"
