#!/usr/bin/env python3
"""Writes ARC-Easy + ARC-Challenge *train* items as plain text ("Question: ...\nAnswer: <gold>\n\n"),
the calibration text of the per-layer sensitivity runs (sensitivity.sh). Train splits only: no
evaluation data. Usage: calib_text.py DATA_DIR OUT.txt"""
import json
import sys

data_dir, out_path = sys.argv[1], sys.argv[2]
n = 0
with open(out_path, "w", encoding="utf-8") as out:
    for name in ("arc_easy_train.jsonl", "arc_challenge_train.jsonl"):
        with open(f"{data_dir}/{name}", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                q = d["question"]
                answer = [c["text"] for c in q["choices"] if c["label"] == d["answerKey"]]
                if answer:
                    out.write(f"Question: {q['stem']}\nAnswer: {answer[0]}\n\n")
                    n += 1
print(f"{n} items -> {out_path}", file=sys.stderr)
