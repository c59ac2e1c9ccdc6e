"""The named data sets: what each one is and where its files come from (`catalog`), which folder holds
them on this machine (`locations`) and how to download the ones gbair may not ship (`fetch`).

Light on purpose: stdlib, pydantic, platformdirs and rich only, so that `gbair data` works in a client
install without torch or numpy. The loaders in `gbair.core.data` read the files named here."""
