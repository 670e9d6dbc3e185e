#!/usr/bin/env bash
# `make run`: a short plain-vs-resnet comparison on offline digits (the dashboard replaces this).
set -eu
SW=.venv/bin/skipweb
for fam in plain resnet; do
  for depth in 20 56; do
    $SW train $fam --depth $depth --dataset digits --epochs 3
  done
done
