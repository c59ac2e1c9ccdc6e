"""The checked-in generated code is what scripts/generate_protos.py makes from protos/ now."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_code_matches_the_protos(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_protos.py"), str(tmp_path)], check=True, capture_output=True)
    generated = sorted(p.name for p in (tmp_path / "gbair" / "v1").iterdir())
    checked_in = ROOT / "services" / "gbair" / "v1"
    assert generated == sorted(p.name for p in checked_in.iterdir() if p.is_file())
    for name in generated:
        assert (tmp_path / "gbair" / "v1" / name).read_bytes() == (checked_in / name).read_bytes(), name


def test_every_field_a_caller_sets_is_commented(tmp_path):
    """Comments on request fields are the API's rules (names, budget, methods, limits) for a caller
    reading the proto; this finds a request message or field added without one."""
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    descriptor_set = tmp_path / "gbair.pb"
    assert protoc.main(["protoc", f"-I{ROOT / 'protos'}", "--include_source_info", f"--descriptor_set_out={descriptor_set}",
                        "gbair/v1/gbair.proto"]) == 0
    (proto,) = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    messages = {m.name: (k, m) for k, m in enumerate(proto.message_type)}
    commented = {tuple(location.path) for location in proto.source_code_info.location
                 if location.leading_comments.strip() or location.trailing_comments.strip()}
    MESSAGE_TYPE, FIELD = 4, 2
    pending = [m.input_type.rsplit(".", 1)[-1] for m in proto.service[0].method]
    seen, missing = set(), []
    while pending:
        name = pending.pop()
        if name in seen or name not in messages:  # enums and well-known types need no field comments
            continue
        seen.add(name)
        index, message = messages[name]
        for k, field in enumerate(message.field):
            if (MESSAGE_TYPE, index, FIELD, k) not in commented:
                missing.append(f"{name}.{field.name}")
            if field.type_name:
                pending.append(field.type_name.rsplit(".", 1)[-1])
    assert "JobSpec" in seen and "DatasetInfo" in seen
    assert missing == []
