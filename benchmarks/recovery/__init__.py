"""Mislabel detection and recovery: every scoring method against every peer (the protocol
in docs/benchmarks.md, "Mislabel detection").

Two grids, each a list of cells (data set, kind of noise, rate p, seed):

- ranking: train on the clean labels, then on the noisy ones; rank the noisy training set with every
  method and peer from that one training run (the same checkpoints, the logits recorded while training,
  the backbone's embeddings, confident learning's K fold models and their ensemble, and for synthetic
  noise a clairvoyant ceiling: the loss of the given label under the clean-label model). AUROC,
  precision@k and recall@k of the flipped (or, on ConvAbuse, disputed) labels; where there are more than
  two classes, relabel accuracy: the share of flagged flips whose suggested label is the true one.
- end to end: at the same total budget of R rounds of k, the test accuracy of G-BAIR's rounds with each
  flagger, of one-shot "flag R·k once, retrain once", and of the clean-label model (on ConvAbuse: trained
  without the disputed rows); the flips G-BAIR found in R rounds against the one-shot top R·k; and G-BAIR
  with the trusted set split into a scoring part and a round-selection part. With --training-seeds N, each
  of these test accuracies is the mean of N trainings of the same set from other initial prompts and batch
  orders: one training's luck moves test accuracy by about as much as the runs differ.

Noise: uniform (a fraction p flipped to a random other class), class-conditional (a fraction p of one
named class flipped to another, `--flip`), pair (a fraction p of every class flipped to the next in label
order; for sets of many classes, asked for with `--noise pair`), and real (ConvAbuse's majority labels,
disputed rows as the ground truth). The JSON is rewritten after every cell and a rerun with the same
settings skips the cells it already holds; an end-to-end cell also writes each recovery into it as the
recovery finishes, so a rerun, even on another machine, resumes the cell from there (round 0 is kept in a
file beside it).

    python -m benchmarks.recovery --quick --out /tmp/recovery-quick
    python -m benchmarks.recovery --out docs/results/recovery-full   # the full protocol: days on a CPU
    python -m benchmarks.recovery --merge runs/seed0 runs/seed1 --out runs/seeds   # one summary of grids run apart
"""
