"""The review app's calls to the coordinator. Each request opens a GbairClient with the signed-in user's
token; a page of suspects (with its total and next page token, which the client's iterator hides) and
the exports' raw chunk streams go to the stub directly."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from gbair.client import GbairClient
from gbair.v1 import gbair_pb2 as pb

QUEUE_PAGE_SIZE = 1000  # the API's largest page: a review queue is read in as few calls as it can be
EVIDENCE_TOP = 10
PAGE_CALL_TIMEOUT_S = 30.0  # a page says the coordinator is slow rather than hang


@dataclass(frozen=True)
class SuspectFilter:
    """Which suspects a list or a review queue shows, and in which order; None: no filter."""

    order: int = pb.SUSPECT_ORDER_UNSPECIFIED
    round: int | None = None
    given_label: str | None = None
    decision: int | None = None  # DECISION_UNSPECIFIED: the undecided ones

    def request(self, job_id: str, page_size: int, page_token: str = "") -> pb.ListSuspectsRequest:
        request = pb.ListSuspectsRequest(job_id=job_id, page_size=page_size, page_token=page_token, order=self.order)
        if self.round is not None:
            request.round = self.round
        if self.given_label is not None:
            request.given_label = self.given_label
        if self.decision is not None:
            request.decision = self.decision
        return request


@dataclass
class SuspectPage:
    suspects: list[pb.Suspect]
    total: int
    next_page_token: str
    label_names: list[str] = field(default_factory=list)


class Coordinator:
    """Where the coordinator is; `client(token)` opens a connection for one user's request."""

    def __init__(self, target: str, tls_ca: Path | None = None):
        self.target = target
        self.tls_ca = tls_ca
        # Whether a token is read-only, by the token's hash: asked once per token rather than on every page.
        self._read_only: dict[str, bool] = {}

    def client(self, token: str) -> GbairClient:
        return GbairClient(self.target, token, tls_ca=self.tls_ca, timeout_s=PAGE_CALL_TIMEOUT_S)

    def is_read_only(self, client: GbairClient, token: str) -> bool:
        """The API has no call that names a token's scope, so the app asks with a write that cannot
        succeed: an empty review. The coordinator checks the scope first (PERMISSION_DENIED for a
        read-only token) and the request after (INVALID_ARGUMENT), so nothing is ever recorded.
        UNAUTHENTICATED and UNAVAILABLE propagate, as from any other call."""
        key = hashlib.sha256(token.encode()).hexdigest()
        if key not in self._read_only:
            try:
                client.stub.ReviewSuspects(pb.ReviewSuspectsRequest(), metadata=client.metadata, timeout=client.timeout_s)
                read_only = False
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                    raise
                read_only = error.code() == grpc.StatusCode.PERMISSION_DENIED
            self._read_only[key] = read_only
        return self._read_only[key]


def list_jobs_newest_first(client: GbairClient) -> list[pb.Job]:
    return list(reversed(client.list_jobs()))


def dataset_of(client: GbairClient, job: pb.Job) -> pb.Dataset | None:
    """The job's data set, or None once it has been deleted."""
    return next((d for d in client.list_datasets() if d.dataset_id == job.spec.dataset_id), None)


def suspect_page(client: GbairClient, job_id: str, chosen: SuspectFilter, page_size: int, page_token: str = "") -> SuspectPage:
    page = client.stub.ListSuspects(chosen.request(job_id, page_size, page_token), metadata=client.metadata, timeout=client.timeout_s)
    return SuspectPage(list(page.suspects), page.total, page.next_page_token, list(page.label_names))


def review_queue(client: GbairClient, job_id: str, chosen: SuspectFilter) -> SuspectPage:
    """Every suspect the filter lets through, in its order: the queue a reviewer steps through."""
    page = suspect_page(client, job_id, chosen, QUEUE_PAGE_SIZE)
    while page.next_page_token:
        following = suspect_page(client, job_id, chosen, QUEUE_PAGE_SIZE, page.next_page_token)
        page.suspects += following.suspects
        page.next_page_token = following.next_page_token
    return page


def evidence(client: GbairClient, job_id: str, suspect: pb.Suspect) -> pb.Explanation:
    """The trusted (validation) examples the suspect helps and hurts most, in the round that flagged it: the
    model it was scored with (a later round may have trained without it)."""
    return client.explain(job_id, suspect.example_id, top=EVIDENCE_TOP, round=suspect.round, against=pb.VALIDATION)


def decide(client: GbairClient, job_id: str, example_id: str, decision: int, label: str = "") -> None:
    """Record one decision; the coordinator replaces an earlier one on the same example, so a form sent
    twice records the same thing twice."""
    client.review(job_id, [pb.ReviewDecision(example_id=example_id, decision=decision, label=label)])


EXPORTS = {"dataset": "ExportCleanedDataset", "adapter": "ExportAdapter"}


def export_chunks(client: GbairClient, job_id: str, what: str) -> Iterator[pb.FileChunk]:
    """The export's file chunks. The first is read here, so that a refusal (a job that has not succeeded,
    a deleted data set) raises before a download starts."""
    stream = getattr(client.stub, EXPORTS[what])(pb.ExportRequest(job_id=job_id), metadata=client.metadata)
    first = next(stream, None)

    def chunks() -> Iterator[pb.FileChunk]:
        try:
            if first is not None:
                yield first
            yield from stream
        finally:
            stream.cancel()
            client.close()

    return chunks()


class _Spool:
    """A write-only file object whose bytes are taken out as they are written, so a zip is streamed."""

    def __init__(self):
        self.pending = bytearray()
        self.written = 0

    def write(self, data: bytes) -> int:
        self.pending += data
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.pending = bytes(self.pending), bytearray()
        return data


def zipped(chunks: Iterator[pb.FileChunk], folder: str) -> Iterator[bytes]:
    """The chunks' files as one zip under `folder/`, yielded as it is built, never all in memory.
    The coordinator sends each file's chunks one after another."""
    spool = _Spool()
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        entry, path = None, None
        for chunk in chunks:
            if chunk.path != path:
                if entry is not None:
                    entry.close()
                path = chunk.path
                entry = archive.open(f"{folder}/{path}", "w", force_zip64=True)
            entry.write(chunk.data)
            yield spool.take()
        if entry is not None:
            entry.close()
    yield spool.take()
