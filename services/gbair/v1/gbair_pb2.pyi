from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FileFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILE_FORMAT_UNSPECIFIED: _ClassVar[FileFormat]
    CSV: _ClassVar[FileFormat]
    JSONL: _ClassVar[FileFormat]

class Split(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPLIT_UNSPECIFIED: _ClassVar[Split]
    TRAIN: _ClassVar[Split]
    VALIDATION: _ClassVar[Split]
    TEST: _ClassVar[Split]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    QUEUED: _ClassVar[JobStatus]
    RUNNING: _ClassVar[JobStatus]
    SUCCEEDED: _ClassVar[JobStatus]
    FAILED: _ClassVar[JobStatus]
    CANCELLED: _ClassVar[JobStatus]

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    ACCEPT: _ClassVar[Decision]
    REJECT: _ClassVar[Decision]
    SET_LABEL: _ClassVar[Decision]

class SuspectOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUSPECT_ORDER_UNSPECIFIED: _ClassVar[SuspectOrder]
    SCORE_DESCENDING: _ClassVar[SuspectOrder]
    SCORE_ASCENDING: _ClassVar[SuspectOrder]
FILE_FORMAT_UNSPECIFIED: FileFormat
CSV: FileFormat
JSONL: FileFormat
SPLIT_UNSPECIFIED: Split
TRAIN: Split
VALIDATION: Split
TEST: Split
JOB_STATUS_UNSPECIFIED: JobStatus
QUEUED: JobStatus
RUNNING: JobStatus
SUCCEEDED: JobStatus
FAILED: JobStatus
CANCELLED: JobStatus
DECISION_UNSPECIFIED: Decision
ACCEPT: Decision
REJECT: Decision
SET_LABEL: Decision
SUSPECT_ORDER_UNSPECIFIED: SuspectOrder
SCORE_DESCENDING: SuspectOrder
SCORE_ASCENDING: SuspectOrder

class ColumnNames(_message.Message):
    __slots__ = ("text", "text_pair", "label", "id")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TEXT_PAIR_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    text: str
    text_pair: str
    label: str
    id: str
    def __init__(self, text: _Optional[str] = ..., text_pair: _Optional[str] = ..., label: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class DatasetInfo(_message.Message):
    __slots__ = ("name", "format", "columns")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: FileFormat
    columns: ColumnNames
    def __init__(self, name: _Optional[str] = ..., format: _Optional[_Union[FileFormat, str]] = ..., columns: _Optional[_Union[ColumnNames, _Mapping]] = ...) -> None: ...

class UploadDatasetRequest(_message.Message):
    __slots__ = ("info", "chunk")
    INFO_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    info: DatasetInfo
    chunk: DataChunk
    def __init__(self, info: _Optional[_Union[DatasetInfo, _Mapping]] = ..., chunk: _Optional[_Union[DataChunk, _Mapping]] = ...) -> None: ...

class DataChunk(_message.Message):
    __slots__ = ("split", "data")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    split: Split
    data: bytes
    def __init__(self, split: _Optional[_Union[Split, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("dataset_id", "name", "format", "train_size", "validation_size", "test_size", "label_names", "bytes")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SIZE_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    TEST_SIZE_FIELD_NUMBER: _ClassVar[int]
    LABEL_NAMES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    name: str
    format: FileFormat
    train_size: int
    validation_size: int
    test_size: int
    label_names: _containers.RepeatedScalarFieldContainer[str]
    bytes: int
    def __init__(self, dataset_id: _Optional[str] = ..., name: _Optional[str] = ..., format: _Optional[_Union[FileFormat, str]] = ..., train_size: _Optional[int] = ..., validation_size: _Optional[int] = ..., test_size: _Optional[int] = ..., label_names: _Optional[_Iterable[str]] = ..., bytes: _Optional[int] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("dataset_id", "model", "method", "action", "rounds", "budget", "patience", "epochs", "batch_size", "learning_rate", "virtual_tokens", "max_length", "seed", "train_size", "val_size", "corrupt", "round_trainings")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    PATIENCE_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SIZE_FIELD_NUMBER: _ClassVar[int]
    VAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRAININGS_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    model: str
    method: str
    action: str
    rounds: int
    budget: float
    patience: int
    epochs: int
    batch_size: int
    learning_rate: float
    virtual_tokens: int
    max_length: int
    seed: int
    train_size: int
    val_size: int
    corrupt: float
    round_trainings: int
    def __init__(self, dataset_id: _Optional[str] = ..., model: _Optional[str] = ..., method: _Optional[str] = ..., action: _Optional[str] = ..., rounds: _Optional[int] = ..., budget: _Optional[float] = ..., patience: _Optional[int] = ..., epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., virtual_tokens: _Optional[int] = ..., max_length: _Optional[int] = ..., seed: _Optional[int] = ..., train_size: _Optional[int] = ..., val_size: _Optional[int] = ..., corrupt: _Optional[float] = ..., round_trainings: _Optional[int] = ...) -> None: ...

class RoundMetrics(_message.Message):
    __slots__ = ("round", "train_size", "val_accuracy", "test_accuracy", "misclassified_val", "flagged", "flagged_corrupted", "train_seconds", "influence_seconds", "val_loss", "val_change_p_value", "val_accuracies", "model_training", "test_accuracies", "class_short_of_labels")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SIZE_FIELD_NUMBER: _ClassVar[int]
    VAL_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MISCLASSIFIED_VAL_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_CORRUPTED_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INFLUENCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    VAL_CHANGE_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    VAL_ACCURACIES_FIELD_NUMBER: _ClassVar[int]
    MODEL_TRAINING_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACIES_FIELD_NUMBER: _ClassVar[int]
    CLASS_SHORT_OF_LABELS_FIELD_NUMBER: _ClassVar[int]
    round: int
    train_size: int
    val_accuracy: float
    test_accuracy: float
    misclassified_val: int
    flagged: int
    flagged_corrupted: int
    train_seconds: float
    influence_seconds: float
    val_loss: float
    val_change_p_value: float
    val_accuracies: _containers.RepeatedScalarFieldContainer[float]
    model_training: int
    test_accuracies: _containers.RepeatedScalarFieldContainer[float]
    class_short_of_labels: str
    def __init__(self, round: _Optional[int] = ..., train_size: _Optional[int] = ..., val_accuracy: _Optional[float] = ..., test_accuracy: _Optional[float] = ..., misclassified_val: _Optional[int] = ..., flagged: _Optional[int] = ..., flagged_corrupted: _Optional[int] = ..., train_seconds: _Optional[float] = ..., influence_seconds: _Optional[float] = ..., val_loss: _Optional[float] = ..., val_change_p_value: _Optional[float] = ..., val_accuracies: _Optional[_Iterable[float]] = ..., model_training: _Optional[int] = ..., test_accuracies: _Optional[_Iterable[float]] = ..., class_short_of_labels: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "request_id", "spec", "status", "error", "rounds", "best_round", "created_at", "updated_at", "report_json", "parent_job_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    BEST_ROUND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    PARENT_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    request_id: str
    spec: JobSpec
    status: JobStatus
    error: str
    rounds: _containers.RepeatedCompositeFieldContainer[RoundMetrics]
    best_round: int
    created_at: str
    updated_at: str
    report_json: str
    parent_job_id: str
    def __init__(self, job_id: _Optional[str] = ..., request_id: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., status: _Optional[_Union[JobStatus, str]] = ..., error: _Optional[str] = ..., rounds: _Optional[_Iterable[_Union[RoundMetrics, _Mapping]]] = ..., best_round: _Optional[int] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., report_json: _Optional[str] = ..., parent_job_id: _Optional[str] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("request_id", "spec")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    spec: JobSpec
    def __init__(self, request_id: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token", "total")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    total: int
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job_id", "status", "phase", "round", "fraction", "metrics", "message")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: JobStatus
    phase: str
    round: int
    fraction: float
    metrics: RoundMetrics
    message: str
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., phase: _Optional[str] = ..., round: _Optional[int] = ..., fraction: _Optional[float] = ..., metrics: _Optional[_Union[RoundMetrics, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class Suspect(_message.Message):
    __slots__ = ("example_id", "round", "rank", "score", "given_label", "suggested_label", "text", "text_pair", "decision", "decided_label", "original_label", "probabilities")
    EXAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    GIVEN_LABEL_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_LABEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TEXT_PAIR_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    DECIDED_LABEL_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_LABEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    example_id: str
    round: int
    rank: int
    score: float
    given_label: str
    suggested_label: str
    text: str
    text_pair: str
    decision: Decision
    decided_label: str
    original_label: str
    probabilities: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, example_id: _Optional[str] = ..., round: _Optional[int] = ..., rank: _Optional[int] = ..., score: _Optional[float] = ..., given_label: _Optional[str] = ..., suggested_label: _Optional[str] = ..., text: _Optional[str] = ..., text_pair: _Optional[str] = ..., decision: _Optional[_Union[Decision, str]] = ..., decided_label: _Optional[str] = ..., original_label: _Optional[str] = ..., probabilities: _Optional[_Iterable[float]] = ...) -> None: ...

class ListSuspectsRequest(_message.Message):
    __slots__ = ("job_id", "page_size", "page_token", "order", "round", "given_label", "decision")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    GIVEN_LABEL_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    page_size: int
    page_token: str
    order: SuspectOrder
    round: int
    given_label: str
    decision: Decision
    def __init__(self, job_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., order: _Optional[_Union[SuspectOrder, str]] = ..., round: _Optional[int] = ..., given_label: _Optional[str] = ..., decision: _Optional[_Union[Decision, str]] = ...) -> None: ...

class ListSuspectsResponse(_message.Message):
    __slots__ = ("suspects", "next_page_token", "total", "label_names")
    SUSPECTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LABEL_NAMES_FIELD_NUMBER: _ClassVar[int]
    suspects: _containers.RepeatedCompositeFieldContainer[Suspect]
    next_page_token: str
    total: int
    label_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, suspects: _Optional[_Iterable[_Union[Suspect, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ..., label_names: _Optional[_Iterable[str]] = ...) -> None: ...

class ReviewDecision(_message.Message):
    __slots__ = ("example_id", "decision", "label")
    EXAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    example_id: str
    decision: Decision
    label: str
    def __init__(self, example_id: _Optional[str] = ..., decision: _Optional[_Union[Decision, str]] = ..., label: _Optional[str] = ...) -> None: ...

class ReviewSuspectsRequest(_message.Message):
    __slots__ = ("job_id", "decisions")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    decisions: _containers.RepeatedCompositeFieldContainer[ReviewDecision]
    def __init__(self, job_id: _Optional[str] = ..., decisions: _Optional[_Iterable[_Union[ReviewDecision, _Mapping]]] = ...) -> None: ...

class ReviewSuspectsResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: int
    def __init__(self, recorded: _Optional[int] = ...) -> None: ...

class ExplainExampleRequest(_message.Message):
    __slots__ = ("job_id", "example_id", "round", "top", "against")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    AGAINST_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    example_id: str
    round: int
    top: int
    against: Split
    def __init__(self, job_id: _Optional[str] = ..., example_id: _Optional[str] = ..., round: _Optional[int] = ..., top: _Optional[int] = ..., against: _Optional[_Union[Split, str]] = ...) -> None: ...

class Influence(_message.Message):
    __slots__ = ("example_id", "score", "label", "text", "predicted_label", "text_pair")
    EXAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_LABEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_PAIR_FIELD_NUMBER: _ClassVar[int]
    example_id: str
    score: float
    label: str
    text: str
    predicted_label: str
    text_pair: str
    def __init__(self, example_id: _Optional[str] = ..., score: _Optional[float] = ..., label: _Optional[str] = ..., text: _Optional[str] = ..., predicted_label: _Optional[str] = ..., text_pair: _Optional[str] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("example_id", "round", "proponents", "opponents")
    EXAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    PROPONENTS_FIELD_NUMBER: _ClassVar[int]
    OPPONENTS_FIELD_NUMBER: _ClassVar[int]
    example_id: str
    round: int
    proponents: _containers.RepeatedCompositeFieldContainer[Influence]
    opponents: _containers.RepeatedCompositeFieldContainer[Influence]
    def __init__(self, example_id: _Optional[str] = ..., round: _Optional[int] = ..., proponents: _Optional[_Iterable[_Union[Influence, _Mapping]]] = ..., opponents: _Optional[_Iterable[_Union[Influence, _Mapping]]] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class RerunWithDecisionsRequest(_message.Message):
    __slots__ = ("job_id", "request_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    request_id: str
    def __init__(self, job_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("path", "data")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    path: str
    data: bytes
    def __init__(self, path: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...
