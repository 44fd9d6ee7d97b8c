#!/usr/bin/env bash
# Every `spool rl` algorithm on the standard grid, then MC epsilon-greedy at several epsilons,
# the deep methods on cart-pole, and the `spool sa` problems; each run's folder under OUT_DIR and
# one table row from its JSON line. SPOOL=path overrides build/spool.
# Usage: bash bench/rl_study.sh [OUT_DIR]
# docs/rl.md's tables came from: bash bench/rl_study.sh rl_study
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-rl_study}
spool=${SPOOL:-build/spool}
mkdir -p "$out"
: > "$out/runs.jsonl"
run() {  # name, then spool arguments
  local name=$1
  shift
  "$spool" "$@" --out "$out/$name" | tail -1 | sed "s/^{/{\"run\": \"$name\", /" >> "$out/runs.jsonl"
}
for algo in value-iteration policy-iteration truncated-pi mc-basic mc-es mc-eps-greedy \
            q-learning-off dqn reinforce a2c; do
  run "$algo" rl --grid standard --algo "$algo"
done
run mc-es-alpha rl --algo mc-es --mc-alpha 0.1
run mc-es-every-visit rl --algo mc-es --mc-alpha 0.1 --every-visit
for algo in sarsa nstep-sarsa q-learning; do
  run "$algo" rl --algo "$algo" --epsilon 0.5 --decay-epsilon
  run "$algo-constant-epsilon" rl --algo "$algo" --epsilon 0.1
done
run policy-evaluation rl --algo policy-evaluation --policy uniform
run td0 rl --algo td0 --policy uniform --alpha 0.02
for d in 1 2 3; do run "td-linear-$d" rl --algo td-linear --degree "$d" --policy uniform --alpha 0.005; done
for e in 0 0.1 0.2 0.5 1; do run "mc-eps-greedy-$e" rl --algo mc-eps-greedy --epsilon "$e"; done
for algo in reinforce a2c dqn; do run "cartpole-$algo" rl --algo "$algo" --env cartpole; done
run sa-mean sa --problem mean
run sa-rm-cubic sa --problem rm-cubic --iterations 10000
run sa-rm-cubic-unprojected sa --problem rm-cubic --bounds none --iterations 100
run sa-rm-tanh sa --problem rm-tanh --iterations 10000
for a in 1/k^2 1/sqrt\(k\) 0.1; do
  run "sa-rm-tanh-${a//[^a-z0-9.]/_}" sa --problem rm-tanh --step-size "$a" --iterations 10000
done
run sa-gd-mean sa --problem gd-mean
cat "$out/runs.jsonl"
