"""G-BAIR: train, find the training examples that most oppose correct validation predictions, remove or
relabel them, retrain from scratch, and keep the best round by validation accuracy."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gbair.core.backend import LocalBackend, RoundBackend, TrainingRequest
from gbair.core.config import GbairConfig
from gbair.core.confident_learning import FOLD_METHODS, out_of_sample_fit
from gbair.core.data.dataset import DataSplits, TextDataset
from gbair.core.evaluation import accuracy, mean_log_loss, most_probable_other, paired_change_p_value
from gbair.core.influence import (
    NEEDS_INITIAL_STATE,
    NEEDS_TRUSTED_LABELS,
    NEEDS_VALIDATION_ERRORS,
    RELABEL_BY_MODEL,
    class_conditional_marks,
    suspicion_scores,
)
from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetState
from gbair.core.neighbours import neighbour_labels
from gbair.core.progress import Progress, no_progress
from gbair.core.recovery_state import RecoveryState, TrainedRound
from gbair.core.report import RecoveryReport, RoundReport, RoundTimings
from gbair.core.training import TrainingResult, initial_checkpoint, training_seeds
from gbair.core.training_dynamics import area_under_the_margin, cartography, most_probable_other_label, recorded_margins


def split_trusted(size: int, selection_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Positions of the trusted examples whose mistakes drive the scoring, and of those whose accuracy picks
    the best round and stops the loop. With a fraction of 0 both are the whole set, as in G-BAIR; a held-out
    selection part keeps the round choice from rewarding a model for fixing the very errors it was
    cleaned against."""
    if selection_fraction == 0:
        return list(range(size)), list(range(size))
    selection_size = round(selection_fraction * size)
    if not 0 < selection_size < size:
        raise ValueError(f"a selection fraction of {selection_fraction} leaves an empty part of {size} trusted examples")
    order = np.random.default_rng(seed).permutation(size)
    return sorted(order[selection_size:].tolist()), sorted(order[:selection_size].tolist())


@dataclass(frozen=True)
class RecoveryOutcome:
    report: RecoveryReport
    best_state: PetState
    best_train_set: TextDataset


@dataclass(frozen=True)
class _Cleaning:
    flagged_ids: list[str]
    flagged_scores: list[float]
    suggestions: dict[str, int]
    """Flagged id -> the most likely other label, for every action; a relabel run applies it."""
    probabilities: list[list[float]]
    """The round's model's class probabilities of each flagged id."""
    class_short_of_labels: int | None = None
    """Where the method reads them, the class that showed the marks of labels taken out of it."""


@dataclass
class _Ranking:
    scores: np.ndarray
    suggest: Callable[[list[int]], list[int]] | None
    """How to suggest new labels for some examples; None: the round's model's most probable other label."""
    class_short_of_labels: int | None = None


class Recovery:
    """Runs G-BAIR rounds on one set of splits. Every round restarts from the backend's seeded initial
    prompt, so rounds differ only in their training data. The model itself stays in the backend (default:
    a `LocalBackend` built from the config).

    A run is a sequence of steps on a serialisable `RecoveryState`: `train_round` (train, evaluate) and
    `finish_round` (score, flag, clean the training set). A caller that saves the state after
    `finish_round` and the `TrainedRound` after `train_round` can stop anywhere and go on later with
    the same result; `run` just does all steps in memory."""

    def __init__(
        self,
        splits: DataSplits,
        config: GbairConfig,
        backend: RoundBackend | None = None,
    ):
        self.splits = splits
        self.config = config
        self.backend = backend or LocalBackend(config, splits.label_names)
        self.initial_state = self.backend.initial_state
        self.validation = self.backend.encode(splits.validation)
        self.scoring_positions, self.selection_positions = split_trusted(
            len(self.validation), config.recovery.selection_fraction, config.train.seed
        )
        self.test = self.backend.encode(splits.test) if splits.test is not None else None
        self.other_trainings = {
            seed: self.backend.seeded_state(seed)
            for seed in training_seeds(config.train.seed, config.recovery.round_trainings)[1:]
        }
        """The seed and initial state of each further training of a round's data."""

    def run(
        self,
        corrupted_ids: Sequence[str] = (),
        progress: Progress = no_progress,
        on_round: Callable[[RoundReport], None] = lambda report: None,
        true_labels: Mapping[str, str] | None = None,
    ) -> RecoveryOutcome:
        state = self.start(corrupted_ids, true_labels)
        final_states: dict[int, PetState] = {}
        while not state.finished:
            trained = self.train_round(state, progress)
            final_states[trained.round] = trained.model_state
            state = self.finish_round(state, trained, progress)
            self.backend.discard(trained.training)  # scored and cleaned: only the final state is read again
            on_round(state.rounds[-1])
        return self.outcome(state, final_states[state.best_round])

    def start(self, corrupted_ids: Sequence[str] = (), true_labels: Mapping[str, str] | None = None) -> RecoveryState:
        """The state before round 0. `true_labels` names the true label of each corrupted id; with two classes
        it may be left out, the true label being the other one."""
        if true_labels is None:
            if corrupted_ids and len(self.splits.label_names) != 2:
                raise ValueError("with more than two classes, corrupted ids need their true labels")
            given = dict(zip(self.splits.train.ids, self.splits.train.labels))
            true_labels = {i: self.splits.label_names[1 - given[i]] for i in corrupted_ids}
        missing = set(corrupted_ids) - set(true_labels)
        if missing:
            raise ValueError(f"no true label for corrupted ids {sorted(missing)[:5]}")
        return RecoveryState(corrupted_ids=list(corrupted_ids), true_labels=dict(true_labels))

    def train_round(self, state: RecoveryState, progress: Progress = no_progress) -> TrainedRound:
        train = self.backend.encode(self.train_set(state))
        training = self.backend.train(self.initial_state, train, progress)
        val_probabilities = self.backend.probabilities(training.final_state, self.validation, progress)
        wrong = val_probabilities.argmax(dim=1) != self.validation.labels
        errors = [p for p in self.scoring_positions if wrong[p]]
        selection = self.selection_positions
        selection_loss = mean_log_loss(val_probabilities[selection], self.validation.labels[selection])
        selection_wrong = [self.validation.ids[p] for p in selection if wrong[p]]
        val_accuracies = [accuracy(val_probabilities[selection], self.validation.labels[selection])]
        test_accuracies = [self._test_accuracy(training.final_state, progress)]
        final_states = [training.final_state]
        started = time.perf_counter()
        others = [TrainingRequest(start, train, seed) for seed, start in self.other_trainings.items()]
        for other in self.backend.train_each(others, progress):
            other_probabilities = self.backend.probabilities(other.final_state, self.validation.subset(selection), progress)
            val_accuracies.append(accuracy(other_probabilities, self.validation.labels[selection]))
            test_accuracies.append(self._test_accuracy(other.final_state, progress))
            final_states.append(other.final_state)
            self.backend.discard(other)
        model_training = int(np.argmax(val_accuracies))  # the first of the best on a tie
        several = bool(self.other_trainings)
        return TrainedRound(
            state.next_round, training, float(np.mean(val_accuracies)), test_accuracies[model_training], errors,
            selection_loss, selection_wrong,
            val_accuracies=val_accuracies if several else None,
            test_accuracies=test_accuracies if several and self.test is not None else None,
            other_trainings_seconds=time.perf_counter() - started,
            model_training=model_training,
            other_model_state=final_states[model_training] if model_training else None,
        )

    def finish_round(self, state: RecoveryState, trained: TrainedRound, progress: Progress = no_progress) -> RecoveryState:
        """Score and clean after `trained`; the returned state is `finished` when no further round follows."""
        recovery = self.config.recovery
        round_index = state.next_round
        if trained.round != round_index:
            raise ValueError(f"trained round {trained.round} does not follow the state, which is at round {round_index}")
        best_val_accuracy = max((r.val_accuracy for r in state.rounds), default=None)
        improved = best_val_accuracy is None or trained.val_accuracy > best_val_accuracy
        rounds_without_gain = 0 if improved else round_index - state.best_round
        train_set = self.train_set(state)
        cleaning = _Cleaning([], [], {}, [])
        scoring = round_index < recovery.rounds and rounds_without_gain < recovery.patience and self._can_score(trained)
        train = self.backend.encode(train_set) if scoring else None
        started = time.perf_counter()
        if scoring:
            # A relabel is final: flagging it again would only flip it back, so relabelled ids are not eligible.
            relabeled = state.relabeled_ids
            eligible = [i for i, example_id in enumerate(train.ids) if example_id not in relabeled]
            cleaning = self._clean(train, trained.training, trained.errors, eligible, progress)
        suggested = {i: self.splits.label_names[y] for i, y in cleaning.suggestions.items()}
        short = cleaning.class_short_of_labels
        report = RoundReport(
            round=round_index,
            train_size=len(train_set),
            val_accuracy=trained.val_accuracy,
            val_accuracies=trained.val_accuracies,
            test_accuracies=trained.test_accuracies,
            model_training=trained.model_training,
            val_loss=trained.val_loss,
            val_wrong_ids=trained.val_wrong_ids,
            val_change_p_value=paired_change_p_value(
                state.rounds[0].val_wrong_ids if state.rounds else None, trained.val_wrong_ids
            ),
            test_accuracy=trained.test_accuracy,
            misclassified_val=len(trained.errors),
            flagged_ids=cleaning.flagged_ids,
            flagged_scores=cleaning.flagged_scores,
            relabels=suggested if self.config.recovery.action == "relabel" else {},
            suggested_labels=suggested,
            flagged_probabilities=cleaning.probabilities,
            class_short_of_labels=None if short is None else self.splits.label_names[short],
            flagged_corrupted=(
                state.wrong_labels(self.splits.train, train_set, cleaning.flagged_ids) if state.corrupted_ids else None
            ),
            timings=RoundTimings(
                train_s=trained.training.seconds + trained.other_trainings_seconds,
                influence_s=time.perf_counter() - started,
                epochs=trained.training.epochs,
                checkpoints=len(trained.training.checkpoints),
            ),
        )
        return state.model_copy(update={"rounds": [*state.rounds, report], "finished": not cleaning.flagged_ids})

    def train_set(self, state: RecoveryState, before_round: int | None = None) -> TextDataset:
        return state.train_set(self.splits.train, self.config.recovery.action, before_round)

    def report(self, state: RecoveryState) -> RecoveryReport:
        return RecoveryReport(
            dataset=self.splits.name,
            method=self.config.influence.method,
            action=self.config.recovery.action,
            seed=self.config.train.seed,
            label_names=self.splits.label_names,
            corrupted_ids=state.corrupted_ids,
            true_labels=state.true_labels,
            rounds=state.rounds,
            best_round=state.best_round,
            config=self.config.model_dump(),
        )

    def outcome(self, state: RecoveryState, best_state: PetState) -> RecoveryOutcome:
        """The finished run; `best_state` is the final PET state of the best round's model."""
        return RecoveryOutcome(self.report(state), best_state, self.train_set(state, state.best_round))

    def _test_accuracy(self, state: PetState, progress: Progress) -> float | None:
        if self.test is None:
            return None
        return accuracy(self.backend.probabilities(state, self.test, progress), self.test.labels)

    def _can_score(self, trained: TrainedRound) -> bool:
        """Methods built on validation errors have nothing to go on when there are none."""
        return bool(trained.errors) or self.config.influence.method not in NEEDS_VALIDATION_ERRORS

    def _clean(
        self,
        train: EncodedSet,
        training: TrainingResult,
        errors: list[int],
        eligible: list[int],
        progress: Progress,
    ) -> _Cleaning:
        count = min(self.config.recovery.flag_count(len(train)), len(eligible))
        ranking = self._scores(train, training, errors, progress)
        scores = ranking.scores
        # Stable sort keeps ties in training-set order, so a run is reproducible.
        candidates = np.asarray(eligible, dtype=np.int64)
        flagged = candidates[np.argsort(-scores[candidates], kind="stable")[:count]].tolist()
        if not flagged:
            return _Cleaning([], [], {}, [], ranking.class_short_of_labels)
        flagged_ids = [train.ids[i] for i in flagged]
        probabilities = self.backend.probabilities(training.final_state, train.subset(flagged))
        # Remove runs get suggestions too, as a reviewer's hint. For the TracIn methods that costs one
        # forward-mode pass per checkpoint over the flagged examples only, small beside scoring.
        suggest = ranking.suggest
        suggested = most_probable_other(probabilities, train.labels[flagged]) if suggest is None else suggest(flagged)
        suggestions = dict(zip(flagged_ids, suggested))
        return _Cleaning(flagged_ids, [float(scores[i]) for i in flagged], suggestions, probabilities.tolist(),
                         ranking.class_short_of_labels)

    def _scores(
        self, train: EncodedSet, training: TrainingResult, errors: list[int], progress: Progress
    ) -> _Ranking:
        """Every training example's suspicion score, and how to suggest new labels for some of them."""
        influence = self.config.influence
        method = influence.method
        if method in FOLD_METHODS:
            fit = out_of_sample_fit(self.backend, train, influence.confident_learning_folds, influence.seed, progress)
            ensemble = method == "ensemble"
            scores = fit.ensemble_suspicion_scores() if ensemble else fit.suspicion_scores()
            return _Ranking(scores, lambda positions: fit.suggested_labels(positions, ensemble))
        if method in ("aum", "cartography"):
            scores = (
                area_under_the_margin(training, train.labels) if method == "aum"
                else 1.0 - cartography(training, train.labels)[0]
            )
            return _Ranking(scores, lambda positions: most_probable_other_label(training, train.labels, positions))
        if method == "knn":
            embeddings = self.backend.embeddings(train, progress)
            neighbours = neighbour_labels(
                embeddings, train.labels.numpy(), influence.knn_neighbours, len(self.splits.label_names)
            )
            return _Ranking(neighbours.suspicion_scores(), neighbours.suggested_labels)
        checkpoints = training.checkpoints
        queries = self.backend.query_gradients(checkpoints, self.validation.subset(errors))
        stats = self.backend.training_statistics(checkpoints, train, queries, progress)
        initial = None
        if method in NEEDS_INITIAL_STATE:
            # Every round starts from self.initial_state, so it is each round's untrained prompt.
            start = [initial_checkpoint(self.initial_state)]
            start_queries = self.backend.query_gradients(start, self.validation.subset(errors))
            initial = self.backend.training_statistics(start, train, start_queries, progress)
        trusted_labels = self.validation.labels[self.scoring_positions]
        # A round saved by a gbair that kept no record is scored from its checkpoints alone.
        recorded = None if training.training_logits is None else recorded_margins(training, train.labels)
        scores = suspicion_scores(
            stats, method, vote_top_fraction=influence.vote_top_fraction, seed=influence.seed, initial=initial,
            trusted_labels=trusted_labels, recorded_margins=recorded,
        )
        short = class_conditional_marks(stats, trusted_labels) if method in NEEDS_TRUSTED_LABELS else None
        if method in RELABEL_BY_MODEL:
            return _Ranking(scores, None, short)
        return _Ranking(scores, lambda positions: self.backend.suggest_labels(checkpoints, train.subset(positions), queries),
                        short)
