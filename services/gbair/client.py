"""A Python client for the gbair gRPC API: plain methods over a channel with the bearer token attached."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc

from gbair.v1 import gbair_pb2 as pb
from gbair.v1 import gbair_pb2_grpc

UPLOAD_CHUNK_BYTES = 1024 * 1024
FORMATS = {".csv": pb.CSV, ".jsonl": pb.JSONL}


class GbairClient:
    def __init__(self, target: str, token: str, tls_ca: Path | None = None, timeout_s: float | None = 60.0):
        if tls_ca is not None:
            self.channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(Path(tls_ca).read_bytes()))
        else:
            self.channel = grpc.insecure_channel(target)
        self.stub = gbair_pb2_grpc.GbairStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.timeout_s = timeout_s

    def __enter__(self) -> GbairClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, method, request, timeout_s: float | None = None):
        return method(request, metadata=self.metadata, timeout=timeout_s or self.timeout_s)

    def upload_dataset(
        self,
        name: str,
        train: Path,
        validation: Path | None = None,
        test: Path | None = None,
        columns: pb.ColumnNames | None = None,
    ) -> pb.Dataset:
        """Upload .csv or .jsonl files (all in one format) as one data set."""
        files = {pb.TRAIN: Path(train), pb.VALIDATION: validation, pb.TEST: test}
        suffix = Path(train).suffix.lower()
        if suffix not in FORMATS:
            raise ValueError(f"{train}: expected a .csv or .jsonl file")
        # Checked before the call: a file that fails to open inside the request stream only cancels it.
        for path in files.values():
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))

        def requests() -> Iterator[pb.UploadDatasetRequest]:
            yield pb.UploadDatasetRequest(info=pb.DatasetInfo(name=name, format=FORMATS[suffix], columns=columns))
            for split, path in files.items():
                if path is None:
                    continue
                with Path(path).open("rb") as handle:
                    while data := handle.read(UPLOAD_CHUNK_BYTES):
                        yield pb.UploadDatasetRequest(chunk=pb.DataChunk(split=split, data=data))

        return self.stub.UploadDataset(requests(), metadata=self.metadata, timeout=self.timeout_s)

    def list_datasets(self) -> list[pb.Dataset]:
        return list(self._call(self.stub.ListDatasets, pb.ListDatasetsRequest()).datasets)

    def submit(self, spec: pb.JobSpec | dict, request_id: str | None = None) -> pb.Job:
        """Submit a job; pass the same `request_id` again to get the same job instead of a second one."""
        spec = spec if isinstance(spec, pb.JobSpec) else pb.JobSpec(**spec)
        request = pb.SubmitJobRequest(request_id=request_id or uuid.uuid4().hex, spec=spec)
        return self._call(self.stub.SubmitJob, request)

    def get_job(self, job_id: str) -> pb.Job:
        return self._call(self.stub.GetJob, pb.GetJobRequest(job_id=job_id))

    def list_jobs(self, page_size: int = 100) -> list[pb.Job]:
        """Every job of the tenant, oldest first, without reports (get_job has them)."""
        jobs, token = [], ""
        while True:
            page = self._call(self.stub.ListJobs, pb.ListJobsRequest(page_size=page_size, page_token=token))
            jobs.extend(page.jobs)
            token = page.next_page_token
            if not token:
                return jobs

    def watch(self, job_id: str) -> Iterator[pb.JobEvent]:
        """Every event of the job so far, then new ones until it ends."""
        return self.stub.WatchJob(pb.WatchJobRequest(job_id=job_id), metadata=self.metadata)

    def cancel(self, job_id: str) -> pb.Job:
        return self._call(self.stub.CancelJob, pb.CancelJobRequest(job_id=job_id))

    def delete_job(self, job_id: str) -> None:
        """Remove a job that has ended, with its folder on the server; cancel a running one first."""
        self._call(self.stub.DeleteJob, pb.DeleteJobRequest(job_id=job_id))

    def delete_dataset(self, dataset_id: str) -> None:
        """Remove a data set that no queued or running job uses."""
        self._call(self.stub.DeleteDataset, pb.DeleteDatasetRequest(dataset_id=dataset_id))

    def suspects(
        self,
        job_id: str,
        page_size: int = 100,
        order: pb.SuspectOrder = pb.SUSPECT_ORDER_UNSPECIFIED,
        round: int | None = None,
        given_label: str | None = None,
        decision: pb.Decision | None = None,
    ) -> Iterator[pb.Suspect]:
        """The job's suspects in `order` (default: by round, then rank), only those of `round`, with
        `given_label` and with `decision` where given (DECISION_UNSPECIFIED: those not decided yet)."""
        token = ""
        while True:
            request = pb.ListSuspectsRequest(
                job_id=job_id, page_size=page_size, page_token=token, order=order, round=round, given_label=given_label,
                decision=decision,
            )
            page = self._call(self.stub.ListSuspects, request)
            yield from page.suspects
            token = page.next_page_token
            if not token:
                return

    def label_names(self, job_id: str) -> list[str]:
        """The labels of the job's data set, the order of each suspect's `probabilities`."""
        return list(self._call(self.stub.ListSuspects, pb.ListSuspectsRequest(job_id=job_id, page_size=1)).label_names)

    def review(self, job_id: str, decisions: list[pb.ReviewDecision]) -> int:
        return self._call(self.stub.ReviewSuspects, pb.ReviewSuspectsRequest(job_id=job_id, decisions=decisions)).recorded

    def explain(
        self, job_id: str, example_id: str, top: int = 10, round: int | None = None, against: pb.Split = pb.TRAIN
    ) -> pb.Explanation:
        """The training examples that most support and oppose `example_id`'s prediction, or with
        `against=VALIDATION` the validation examples a training example most helps and hurts."""
        request = pb.ExplainExampleRequest(job_id=job_id, example_id=example_id, top=top, round=round, against=against)
        return self._call(self.stub.ExplainExample, request, timeout_s=600)

    def rerun_with_decisions(self, job_id: str, request_id: str | None = None) -> pb.Job:
        """A new job on the reviewed training set of `job_id` (a job that succeeded); pass the same
        `request_id` again to get the same job instead of a second one."""
        request = pb.RerunWithDecisionsRequest(job_id=job_id, request_id=request_id or uuid.uuid4().hex)
        return self._call(self.stub.RerunWithDecisions, request, timeout_s=600)

    def export_cleaned(self, job_id: str, out_dir: Path) -> list[Path]:
        return self._save(self.stub.ExportCleanedDataset(pb.ExportRequest(job_id=job_id), metadata=self.metadata), out_dir)

    def export_adapter(self, job_id: str, out_dir: Path) -> list[Path]:
        return self._save(self.stub.ExportAdapter(pb.ExportRequest(job_id=job_id), metadata=self.metadata), out_dir)

    @staticmethod
    def _save(chunks: Iterator[pb.FileChunk], out_dir: Path) -> list[Path]:
        out_dir = Path(out_dir).resolve()
        written: dict[str, Path] = {}
        for chunk in chunks:
            target = (out_dir / chunk.path).resolve()
            if not target.is_relative_to(out_dir):
                raise ValueError(f"the server sent a path outside the export folder: {chunk.path}")
            if chunk.path not in written:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"")
                written[chunk.path] = target
            with target.open("ab") as handle:
                handle.write(chunk.data)
        return list(written.values())
