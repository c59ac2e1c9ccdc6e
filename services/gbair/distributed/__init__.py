"""G-BAIR on a Ray cluster: prompt-tuning on Ray Train and influence scoring on Ray Serve, behind core's
RoundBackend protocol. Nothing in gbair.core imports this package, and this file imports nothing, so that
reading its settings (distributed.config) does not import Ray: import the modules themselves."""
