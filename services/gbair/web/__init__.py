"""`gbair web`: the review app. Server-rendered pages over the coordinator's gRPC API, as a client of it
like the command line: it holds no state of its own beyond the signed-in user's cookies."""
