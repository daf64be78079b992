"""Writes metrics_fixture.json: random labels and predictions for 13 classes and what
scikit-learn computes from them, the reference ConfusionMatrixTests compares against.

Edge cases built in: class 10 has no samples and is never predicted, class 11 has samples but
is never predicted, class 12 has no samples but is predicted.

Run: /work/torchvenv/bin/python make_metrics_fixture.py   (numpy, scikit-learn)
"""
import json
import os

import numpy as np
import sklearn
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

K = 13
N = 500
rng = np.random.default_rng(20240613)

y_true = rng.choice([c for c in range(K) if c not in (10, 12)], size=N)
# Right 60% of the time, else a random class: metrics well away from 0 and 1.
y_pred = np.where(rng.random(N) < 0.6, y_true, rng.integers(0, K, size=N))
y_pred[y_pred == 11] = 3   # class 11 is never predicted
y_pred[y_pred == 10] = 4   # class 10 is never predicted (and has no samples)
assert not (y_pred == 12).all() and (y_pred == 12).any()

labels = list(range(K))
p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
present = sorted(set(y_true.tolist()))
pp, pr, pf, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average="macro", zero_division=0)

# Ignite's Fbeta(1, average=True) over per-class Precision/Recall(average=False): the mean of
# per-class 2PR/(P+R+1e-15). It must agree with sklearn's macro F1.
ignite_f1 = np.mean(2 * p * r / (p + r + 1e-15))
assert abs(ignite_f1 - mf) < 1e-12, (ignite_f1, mf)

fixture = {
    "sklearn_version": sklearn.__version__,
    "class_count": K,
    "y_true": y_true.tolist(),
    "y_pred": y_pred.tolist(),
    "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    "accuracy": accuracy_score(y_true, y_pred),
    "precision": p.tolist(),
    "recall": r.tolist(),
    "f1": f.tolist(),
    "support": s.tolist(),
    "macro_all": {"precision": mp, "recall": mr, "f1": mf, "classes": K},
    "macro_present": {"precision": pp, "recall": pr, "f1": pf, "classes": len(present)},
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics_fixture.json")
# One key a line, values compact: small, and diffs stay readable. Floats are written as repr,
# which round-trips exactly.
with open(out, "w") as fh:
    fh.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in fixture.items()) + "\n}\n")
print(f"wrote {out}: macro P {mp:.6f} R {mr:.6f} F1 {mf:.6f}; over present classes F1 {pf:.6f}")
