"""ConvAbuse keeps every annotator's answer on each row, in one-hot columns
`AnnotatorN_is_abuse.{1,0,-1,-2,-3}` (1 not abusive, 0 ambiguous, -1..-3 mildly..very strongly
abusive; empty where that annotator did not label the row). From them come a row's label and whether
its annotators disagree, which is the set's real label noise.

- An annotator who labelled a row more than once has comma-separated flags in each cell, one per
  labelling. Each annotator casts one vote: their answer if all their labellings agree, else ambiguous.
- Ambiguous votes abstain: the majority label is the larger of abusive and not-abusive votes, and a
  tie (including all votes ambiguous) has no majority.
- A row is unanimous when every annotator voted the same class and none voted ambiguous.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from gbair.core.data.dataset import TextDataset

NOT_ABUSIVE = "not_abusive"
ABUSIVE = "abusive"
AMBIGUOUS = "ambiguous"
LABELS = (NOT_ABUSIVE, ABUSIVE)

_ANSWER_COLUMN = re.compile(r"^(Annotator\d+)_is_abuse\.(-?\d)$")
_CLASS_OF_ANSWER = {"1": NOT_ABUSIVE, "0": AMBIGUOUS, "-1": ABUSIVE, "-2": ABUSIVE, "-3": ABUSIVE}


def votes(record: Mapping[str, Any]) -> list[str]:
    """One class per annotator who labelled the row. Raises ValueError on cells that are not one-hot."""
    cells_by_annotator: dict[str, dict[str, str]] = {}
    for column, cell in record.items():
        if (match := _ANSWER_COLUMN.match(column)) and cell is not None and str(cell).strip():
            annotator, answer = match.groups()
            cells_by_annotator.setdefault(annotator, {})[answer] = str(cell)
    if not any(_ANSWER_COLUMN.match(column) for column in record):
        raise ValueError("no AnnotatorN_is_abuse.* columns")
    return [_vote(annotator, cells) for annotator, cells in sorted(cells_by_annotator.items())]


def _vote(annotator: str, cells: dict[str, str]) -> str:
    flags = {answer: [flag.strip() for flag in cell.split(",")] for answer, cell in cells.items()}
    labellings = {len(column) for column in flags.values()}
    if len(labellings) != 1:
        raise ValueError(f"{annotator}'s is_abuse cells hold different numbers of answers")
    classes = set()
    for labelling in range(labellings.pop()):
        chosen = [answer for answer, column in flags.items() if column[labelling] == "1"]
        if len(chosen) != 1 or chosen[0] not in _CLASS_OF_ANSWER:
            raise ValueError(f"{annotator}'s is_abuse cells do not mark exactly one answer")
        classes.add(_CLASS_OF_ANSWER[chosen[0]])
    return classes.pop() if len(classes) == 1 else AMBIGUOUS


def majority_label(record: Mapping[str, Any]) -> str | None:
    """The majority of abusive and not-abusive votes; None for a tie."""
    counts = Counter(votes(record))
    if counts[ABUSIVE] == counts[NOT_ABUSIVE]:
        return None
    return ABUSIVE if counts[ABUSIVE] > counts[NOT_ABUSIVE] else NOT_ABUSIVE


def unanimous_label(record: Mapping[str, Any]) -> str | None:
    """The label every annotator gave, or None where they differ or one found the row ambiguous."""
    distinct = set(votes(record))
    return distinct.pop() if len(distinct) == 1 and AMBIGUOUS not in distinct else None


def disputed_ids(dataset: TextDataset) -> list[str]:
    """Ids of the examples whose annotators disagree (not unanimous), from the raw records the loader
    keeps: where ConvAbuse's real label errors concentrate."""
    return [
        example_id
        for example_id, record in zip(dataset.ids, dataset.records, strict=True)
        if unanimous_label(record) is None
    ]
