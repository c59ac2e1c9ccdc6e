"""Python imports this module at start-up in any process whose PYTHONPATH holds this folder. Where
FORBID_PET_CLASSIFIER=1 is set too, building a PetClassifier in that process raises: the Ray tests start a
coordinator so, to show that a job on Ray keeps every model on the cluster."""

import os

if os.environ.get("FORBID_PET_CLASSIFIER") == "1":
    from gbair.core.model import pet

    def _refuse(self, *args, **kwargs):
        raise RuntimeError(f"a PetClassifier was built in process {os.getpid()}, which must hold no model")

    pet.PetClassifier.__init__ = _refuse
