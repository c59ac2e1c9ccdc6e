"""The algorithm, in plain PyTorch: data, the prompt-tuned classifier, training, TracIn influence and the
G-BAIR round loop. Nothing here imports Ray, gRPC or Redis; the services wrap it."""
