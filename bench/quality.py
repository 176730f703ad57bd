"""Test accuracy of glassnet on each bundled data set, beside scikit-learn's MLPClassifier
with the same architecture and settings, in the same run, over several seeds.

    python bench/quality.py [--seeds 5] [--json results.json]
    python bench/quality.py --defaults [--seeds 3]

``--defaults`` compares instead what each gives with no options at all: ``glassnet
train --data NAME --seed S`` (the CLI's defaults, through the same library the command
uses) against ``MLPClassifier(random_state=S)`` on the same split and standardisation,
median test accuracy over the seeds (issue 13: within 1 point).

Per seed, both contenders get the same stratified split (the seed's), the same
standardisation, hidden sizes, activation, optimiser (Adam), learning rate, batch size,
number of epochs and no regularisation; scikit-learn's early stopping is turned off so
both run every epoch.  Weights start differently (each library's own He/Glorot draw).
Quality bar (issue 5): digits ≥ 0.97, breast_cancer ≥ 0.96, iris ≥ 0.95.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np

import glassnet as gn
from glassnet.data import load_dataset

#: Same settings for both contenders, per data set.
SETTINGS = {
    "digits": {"hidden": (64,), "lr": 1e-3, "batch_size": 32, "epochs": 100},
    "iris": {"hidden": (16,), "lr": 1e-2, "batch_size": 16, "epochs": 100},
    "wine": {"hidden": (32,), "lr": 1e-3, "batch_size": 16, "epochs": 100},
    "breast_cancer": {"hidden": (32,), "lr": 1e-3, "batch_size": 32, "epochs": 100},
}
BAR = {"digits": 0.97, "breast_cancer": 0.96, "iris": 0.95}


def run_glassnet(ds, s, seed):
    net = gn.mlp([ds.n_features, *s["hidden"], ds.n_classes], hidden="relu", seed=seed)
    start = time.perf_counter()
    net.fit(
        ds.X_train,
        ds.y_train,
        optimizer=gn.optim.Adam(lr=s["lr"]),
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        seed=seed,
    )
    seconds = time.perf_counter() - start
    return float((net.predict(ds.X_test) == ds.y_test).mean()), seconds


def run_sklearn(ds, s, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=s["hidden"],
        activation="relu",
        solver="adam",
        learning_rate_init=s["lr"],
        batch_size=s["batch_size"],
        max_iter=s["epochs"],
        alpha=0.0,
        tol=0.0,
        n_iter_no_change=s["epochs"] + 1,
        random_state=seed,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(ds.X_train, ds.y_train)
    seconds = time.perf_counter() - start
    return float(clf.score(ds.X_test, ds.y_test)), seconds


def run_cli_defaults(name, seed, folder):
    """``glassnet train --data NAME --seed SEED`` with every other option at its default."""
    from glassnet.runs import prepare_run, train_run

    run = prepare_run(name, None, {"seed": seed})
    start = time.perf_counter()
    out = f"{folder}/{name}-{seed}.npz"
    summary = train_run(
        run, out=out, checkpoint=out + ".ckpt", keep_checkpoint=False, progress=False
    )
    return summary.test.accuracy, time.perf_counter() - start, summary.epochs


def run_sklearn_defaults(ds, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(ds.X_train, ds.y_train)
    return float(clf.score(ds.X_test, ds.y_test)), time.perf_counter() - start


def defaults_table(seeds: int) -> dict:
    import tempfile

    print(
        f"{'data set':<14} {'glassnet CLI':>12} {'MLPClassifier()':>15} {'diff':>6}"
        "  epochs  verdict"
    )
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in SETTINGS:
            ours, theirs, epochs = [], [], []
            for seed in range(seeds):
                acc, _, ep = run_cli_defaults(name, seed, folder)
                ours.append(acc)
                epochs.append(ep)
                theirs.append(run_sklearn_defaults(load_dataset(name, seed=seed), seed)[0])
            a, b = statistics.median(ours), statistics.median(theirs)
            ok = a >= b - 0.01
            print(
                f"{name:<14} {a:12.4f} {b:15.4f} {a - b:+6.3f}  {statistics.median(epochs):6.0f}"
                f"  {'within 1 point' if ok else 'NOT within 1 point'}"
            )
            results[name] = {"glassnet": ours, "sklearn": theirs, "epochs": epochs}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--defaults", action="store_true", help="compare default settings")
    args = parser.parse_args()
    if args.defaults:
        results = defaults_table(args.seeds)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
        return
    results = {}
    header = (
        f"{'data set':<14} {'contender':<10} {'mean':>6} {'std':>6} {'min':>6} {'max':>6}"
        f" {'fit s':>6}  bar"
    )
    print(header)
    print("-" * len(header))
    for name, s in SETTINGS.items():
        rows = {"glassnet": [], "sklearn": []}
        times = {"glassnet": [], "sklearn": []}
        for seed in range(args.seeds):
            ds = load_dataset(name, test_size=0.25, seed=seed)
            for who, fn in (("glassnet", run_glassnet), ("sklearn", run_sklearn)):
                acc, sec = fn(ds, s, seed)
                rows[who].append(acc)
                times[who].append(sec)
        results[name] = {"settings": {**s, "hidden": list(s["hidden"])}, "seeds": args.seeds}
        for who in ("glassnet", "sklearn"):
            acc = rows[who]
            mean = statistics.mean(acc)
            std = statistics.stdev(acc) if len(acc) > 1 else 0.0
            bar = BAR.get(name)
            verdict = (
                ""
                if bar is None or who != "glassnet"
                else (f"≥ {bar}: {'met' if mean >= bar else 'NOT met'}")
            )
            print(
                f"{name:<14} {who:<10} {mean:6.4f} {std:6.4f} {min(acc):6.4f} {max(acc):6.4f}"
                f" {statistics.median(times[who]):6.3f}  {verdict}"
            )
            results[name][who] = {
                "accuracy": acc,
                "mean": mean,
                "std": std,
                "median_fit_seconds": statistics.median(times[who]),
            }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    np.seterr(all="raise", under="ignore")  # numeric trouble should be loud (underflow is fine)
    main()
