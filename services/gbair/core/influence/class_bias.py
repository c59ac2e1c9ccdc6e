"""Whether a round shows the marks of labels taken out of one class (class-conditional noise).

Flips out of a class c leave two marks that a round can see without knowing which labels are wrong: the
training labels hold a smaller share of c than the trusted set does, and the model trained on them gets the
trusted examples of c wrong more often than those of the other classes. Uniform flips leave neither mark
in the same class: on balanced data they keep the shares, and on imbalanced data they move labels into the
minority class, while the model's errors pile up in whichever class it finds hard. So both marks must be
found in one class: an intersection-union test, each mark at the level, no correction needed for the pair. Over
the classes the level is divided by C - 1, the shares' degrees of freedom (Bonferroni): with two classes one
class's smaller share is the other's larger one, a single test; with 77 classes of a few trusted examples
each, one may show both by chance (in the README's demo, 8 of 8 trusted `exchange_rate` examples were wrong,
and its share was 1.2% of the uniformly flipped training labels against 2.7% of the trusted ones).
"""

from __future__ import annotations

import torch
from scipy.stats import fisher_exact

# The chance, over all classes, of finding both marks where no labels were taken out of a class. Missing real
# class-conditional flips costs the default far more than reading the opposition where there are none
# (docs/benchmarks.md), so the level is lenient: with 400 training and 200 trusted examples, a fifth of one of
# two balanced classes flipped shifts its share by a z of about 2.3, and the draw of the two sets can hide half.
SIGNIFICANCE = 0.1


def class_short_of_labels(
    train_labels: torch.Tensor, trusted_labels: torch.Tensor, error_labels: torch.Tensor, num_classes: int
) -> int | None:
    """The class that shows both marks (where several do, the one whose weaker mark is the stronger), or None.
    `error_labels`: the trusted labels of the misclassified trusted examples."""
    train = torch.bincount(train_labels, minlength=num_classes).tolist()
    trusted = torch.bincount(trusted_labels, minlength=num_classes).tolist()
    errors = torch.bincount(error_labels, minlength=num_classes).tolist()
    all_train, all_trusted, all_errors = sum(train), sum(trusted), sum(errors)
    level = SIGNIFICANCE / max(1, num_classes - 1)
    found: dict[int, float] = {}
    for c in range(num_classes):
        if trusted[c] == 0 or errors[c] == 0:
            continue
        smaller_share = fisher_exact(
            [[train[c], all_train - train[c]], [trusted[c], all_trusted - trusted[c]]], alternative="less"
        ).pvalue
        more_errors = fisher_exact(
            [[errors[c], trusted[c] - errors[c]], [all_errors - errors[c], all_trusted - trusted[c] - (all_errors - errors[c])]],
            alternative="greater",
        ).pvalue
        if smaller_share < level and more_errors < level:
            found[c] = max(smaller_share, more_errors)
    return min(found, key=found.get) if found else None
