"""The finished cells as mean ± std over seeds, as markdown tables, and as plots."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import CURVE_POINTS, format_mean_std, line_plot, markdown_table, mean_std
from benchmarks.recovery.cells import NOISE_KINDS
from gbair.core.evaluation import paired_change_p_value

# McNemar's p below which a round-to-round change of validation accuracy counts as significant.
SIGNIFICANCE = 0.05


def recovered_fraction(clean: float, noisy: float, after: float) -> float | None:
    """Undefined when the noise did not lower accuracy."""
    return (after - noisy) / (clean - noisy) if clean > noisy else None


def _mean_std_of(values: list[float | None]) -> dict[str, float] | None:
    present = [v for v in values if v is not None]
    return mean_std(present) if present else None


def summarise(cells: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Mean ± std over seeds, per grid, data set, kind of noise and rate."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        groups[(cell["grid"], cell["dataset"], cell["noise"], cell["corruption"])].append(cell)
    summaries: dict[str, list[dict[str, Any]]] = {"ranking": [], "end-to-end": []}
    for (grid, dataset, noise, rate), group in groups.items():
        summary: dict[str, Any] = {
            "dataset": dataset, "noise": noise, "corruption": rate, "seeds": [c["seed"] for c in group],
            "accuracy": {name: mean_std([c["accuracy"][name] for c in group]) for name in ("clean", "noisy")},
            "methods": {},
        }
        if grid == "ranking":
            # Cells from before the field was recorded say nothing: None.
            found = [c.get("class_conditional_marks") for c in group]
            summary["class_conditional_marks"] = None if None in found else sum(found)
        for method in dict.fromkeys(m for c in group for m in c["methods"]):
            # Seeds run apart may have asked for other flaggers: each is averaged over the seeds that ran it.
            metrics = [c["methods"][method] for c in group if method in c["methods"]]
            if grid == "ranking":
                summary["methods"][method] = {
                    **{name: mean_std([m[name] for m in metrics]) for name in ("auroc", "precision_at_k", "recall_at_k")},
                    "relabel_accuracy": _mean_std_of([m.get("relabel_accuracy") for m in metrics]),
                    "k": metrics[0]["k"],
                    "flips_found_curve": np.mean([m["flips_found_curve"] for m in metrics], axis=0).round(4).tolist(),
                }
            else:
                # A --one-shot-methods flagger has no G-BAIR rounds: its entry holds only "one_shot".
                runs = {"rounds": [m for m in metrics if "test_accuracy" in m],
                        "one_shot": [m["one_shot"] for m in metrics if "one_shot" in m]}
                summary["methods"][method] = {
                    run: {name: _mean_std_of([m[name] for m in found])
                          for name in ("test_accuracy", "recovered_fraction", "flips_found", "flagged", "relabel_accuracy")}
                    for run, found in runs.items() if found
                }
                if runs["rounds"]:
                    summary["methods"][method]["rounds"]["validation_follows_test"] = _validation_follows_test(
                        [m["rounds"] for m in runs["rounds"]])
        if grid == "end-to-end":
            splits = [c["split_trusted_set"] for c in group if c["split_trusted_set"]]
            summary["split_trusted_set"] = {
                name: _mean_std_of([s[name] for s in splits]) for name in ("test_accuracy", "recovered_fraction")
            } if splits else None
            summary["k"], summary["rounds"] = group[0]["k"], group[0]["rounds"]
            # Cells from before --training-seeds trained each kept set once.
            summary["training_seeds"] = len(group[0].get("training_seeds", [group[0]["seed"]]))
        summaries[grid].append(summary)
    return summaries


def _cell(summary: dict[str, float] | None, digits: int = 3) -> str:
    return "–" if summary is None else format_mean_std(summary, digits)


def markdown(summaries: dict[str, list[dict[str, Any]]]) -> str:
    """One ranking table per kind of noise (a column pair per data set and rate, methods by mean AUROC), then
    the end-to-end table and the iteration table."""
    text = ""
    for noise in NOISE_KINDS:
        group = [s for s in summaries["ranking"] if s["noise"] == noise]
        if not group:
            continue
        columns = [s["dataset"] + _rate(s) for s in group]
        methods = sorted({m for s in group for m in s["methods"]},
                         key=lambda m: -np.mean([s["methods"][m]["auroc"]["mean"] for s in group if m in s["methods"]]))
        header = ["method"] + [f"{c} {metric}" for c in columns for metric in ("AUROC", "P@k", "relabel acc")]
        rows = []
        for method in methods:
            row = [f"`{method}`"]
            for s in group:
                m = s["methods"].get(method)
                row += ["–"] * 3 if m is None else [
                    _cell(m["auroc"]), _cell(m["precision_at_k"]), _cell(m["relabel_accuracy"])]
            rows.append(row)
        ks = ", ".join(f"{c}: k={next(iter(s['methods'].values()))['k']}, seeds {len(s['seeds'])}{_marks(s)}"
                       for c, s in zip(columns, group))
        target = "disputed rows" if noise == "real" else "flipped labels"
        text += f"## Ranking, {noise} noise: {target} found by the first model ({ks})\n\n" + markdown_table(header, rows) + "\n"
    end_to_end = summaries["end-to-end"]
    if end_to_end:
        text += _end_to_end_markdown(end_to_end)
    return text


def _marks(summary: dict[str, Any]) -> str:
    found = summary.get("class_conditional_marks")
    return "" if found is None else f", marks found at {found}"


def _rate(summary: dict[str, Any]) -> str:
    return "" if summary["corruption"] is None else f" p={summary['corruption']}"


def _validation_follows_test(runs: list[list[dict[str, Any]]]) -> dict[str, int]:
    """Of the steps from one round to the next that changed test accuracy, how many changed validation
    accuracy the same way: how well the trusted set can choose the round. The same among the steps whose
    validation change McNemar's test finds significant (p < SIGNIFICANCE), where the rounds recorded which
    trusted examples they got wrong."""
    steps = [(after["val_accuracy"] - before["val_accuracy"], after["test_accuracy"] - before["test_accuracy"],
              paired_change_p_value(before.get("val_wrong_ids"), after.get("val_wrong_ids")))
             for rounds in runs for before, after in zip(rounds, rounds[1:])]
    moved = [(val, test, p) for val, test, p in steps if test != 0]
    significant = [(val, test) for val, test, p in moved if p is not None and p < SIGNIFICANCE]
    return {"same_way": int(sum(np.sign(val) == np.sign(test) for val, test, _ in moved)), "steps": len(moved),
            "significant_same_way": int(sum(np.sign(val) == np.sign(test) for val, test in significant)),
            "significant_steps": len(significant)}


def _fewer_seeds(value: dict[str, float], summary: dict[str, Any]) -> str:
    return f" ({value['n']} of {len(summary['seeds'])} seeds)" if value["n"] < len(summary["seeds"]) else ""


def _trainings(summary: dict[str, Any]) -> str:
    trainings = summary.get("training_seeds", 1)  # absent from summaries written before --training-seeds
    return "" if trainings == 1 else f", each kept set's test accuracy the mean of {trainings} trainings"


def _cell_name(summary: dict[str, Any]) -> str:
    return f"{summary['dataset']} {summary['noise']}" + _rate(summary)


def _end_to_end_markdown(cells: list[dict[str, Any]]) -> str:
    """The end-to-end table (a run per row, a column pair per cell) and the iteration table (a flagger per row)."""
    names = [_cell_name(s) for s in cells]
    budgets = "; ".join(f"{name}: {s['rounds']} rounds of {s['k']} or one shot of {s['rounds'] * s['k']}, "
                        f"seeds {len(s['seeds'])}" + _trainings(s) for name, s in zip(names, cells))
    methods = list(dict.fromkeys(m for s in cells for m in s["methods"]))

    def row(label: str, pick: Callable[[dict[str, Any]], dict[str, Any] | None]) -> list[str]:
        values = [pick(s) for s in cells]
        return [label] + [part for s, v in zip(cells, values) for part in (
            ("–", "–") if v is None else (_cell(v["test_accuracy"]) + _fewer_seeds(v["test_accuracy"], s),
                                          _cell(v["recovered_fraction"], 2)))]

    def accuracy(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def pick(s: dict[str, Any]) -> dict[str, Any]:
            # 1 for clean, 0 for noisy; undefined, as in every run's row, where the noise cost nothing.
            recovered = recovered_fraction(*(s["accuracy"][key]["mean"] for key in ("clean", "noisy", name)))
            return {"test_accuracy": s["accuracy"][name],
                    "recovered_fraction": None if recovered is None else {"mean": recovered, "n": 1}}
        return pick

    rows = [row("clean labels (real noise: disputed rows removed)", accuracy("clean")),
            row("noisy labels (round 0)", accuracy("noisy"))]
    for method in methods:
        for run, label in (("rounds", f"G-BAIR, `{method}`"), ("one_shot", f"one shot, `{method}`")):
            if any(run in s["methods"].get(method, {}) for s in cells):
                rows.append(row(label, lambda s, m=method, r=run: s["methods"].get(m, {}).get(r)))
    rows.append(row("G-BAIR, trusted set split into scoring and round selection", lambda s: s["split_trusted_set"]))
    header = ["run"] + [f"{name} {column}" for name in names for column in ("test acc", "recovered")]

    def found(run: dict[str, Any] | None) -> str:
        return "–" if run is None else f"{_cell(run['flips_found'], 0)} / {_cell(run['flagged'], 0)}"

    iterated = [method for method in methods if any("rounds" in s["methods"].get(method, {}) for s in cells)]
    iteration = [[f"`{method}`"] + [found(s["methods"].get(method, {}).get(run)) for s in cells
                                    for run in ("rounds", "one_shot")]
                 for method in iterated]

    def follows(run: dict[str, Any] | None) -> str:
        counts = (run or {}).get("validation_follows_test")  # absent from results written before it was counted
        if counts is None:
            return "–"
        # Absent from results written before the rounds recorded their misclassified trusted examples.
        significant = counts.get("significant_steps")
        return f"{counts['same_way']} / {counts['steps']}" + (
            "" if not significant else f" (significant: {counts['significant_same_way']} / {significant})")

    choosing = [[f"`{method}`"] + [follows(s["methods"].get(method, {}).get("rounds")) for s in cells]
                for method in iterated]
    return ("## End to end: test accuracy at the same total budget (G-BAIR: best round by validation; one shot: "
            f"the retrained model; {budgets})\n\n" + markdown_table(header, rows) + "\n"
            + "## Iterating: wrong labels found / flagged in R rounds against one shot of R·k\n\n"
            + markdown_table(["flagger"] + [f"{name} {run}" for name in names for run in ("G-BAIR", "one shot")],
                             iteration) + "\n"
            + "## Choosing the round: steps from one round to the next where validation accuracy moved the way "
            "test accuracy did / steps that moved test accuracy (in brackets the same for the steps whose "
            f"validation change is significant, McNemar's p < {SIGNIFICANCE})\n\n"
            + markdown_table(["flagger"] + names, choosing))


def plots(summaries: dict[str, list[dict[str, Any]]], folder: Path) -> list[Path]:
    written = []
    inspected = np.linspace(0, 1, CURVE_POINTS).tolist()
    for s in summaries["ranking"]:
        name = f"{s['dataset']}-{s['noise']}" + ("" if s["corruption"] is None else f"-p{s['corruption']}")
        curves = {method: (inspected, m["flips_found_curve"]) for method, m in s["methods"].items()}
        written.append(line_plot(
            curves, folder / f"flips-found-{name}.png", diagonal=True,
            title=f"{name}: wrong labels found by the first model",
            xlabel="fraction of the training set inspected, most suspicious first", ylabel="fraction found",
        ))
    return written
