"""G-BAIR on a Ray cluster: joining it, prompt-tuning on Ray Train, and RayBackend, which puts training and
the influence service (gbair.serving) behind core's RoundBackend protocol. This package builds on
gbair.serving, never the reverse; nothing in gbair.core imports either. This file imports nothing, so that
reading the settings (distributed.config) does not import Ray: import the modules themselves."""
