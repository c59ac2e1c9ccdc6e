"""The influence service: a Ray Serve deployment that scores shards of a training set (deployment), the
driver that splits a training set into shards, sends them to the replicas concurrently and gathers the
results (driver), and what the service shares with training on Ray: its settings (config) and the PET
checkpoints in shared storage that workers write and replicas read (checkpoints).

This package imports nothing from gbair.distributed, which builds on it. This file imports nothing, so
that reading the settings or the checkpoint helpers does not import Ray: import the modules themselves."""
