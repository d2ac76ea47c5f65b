import csv
import io
import json
from datetime import UTC, datetime

import boto3
import numpy as np
from moto import mock_aws

from imgsearch.domain.centroids import CentroidModel
from jobs.export import COLUMNS, PERSONALIZE_SCHEMA, rows, to_csv, write
from schemas.events import EventType, PersonalizationEvent

T = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def ev(i, cluster, version="v2", user="alice", etype=EventType.DOWNLOAD, weight=5.0):
    return PersonalizationEvent(
        event_id=f"e{i}",
        user_id=user,
        cluster_id=cluster,
        image_id=f"img{i}",
        event_type=etype,
        weight=weight,
        timestamp=T,
        centroid_version=version,
    )


def model():
    return CentroidModel("v2", "style", "f", np.eye(3, dtype=np.float32), remaps={"v1": {0: {2: 0.8, 1: 0.2}}})


def test_rows_dedupe_and_remap_older_versions():
    table = rows([ev(1, 1), ev(1, 1), ev(2, 0, version="v1"), ev(3, 5, version="v0")], model())
    assert table == [
        ["alice", "1", str(int(T.timestamp())), "download", "5"],
        ["alice", "2", str(int(T.timestamp())), "download", "5"],
    ]


def test_csv_header_and_schema_match_personalize():
    text = to_csv(rows([ev(1, 1, etype=EventType.VIEW, weight=1.0)], None))
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == COLUMNS == ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]
    assert parsed[1][3] == "view" and parsed[1][2] == "1795608000"
    assert PERSONALIZE_SCHEMA["namespace"] == "com.amazonaws.personalize.schema"


@mock_aws
def test_write_locally_and_to_s3(tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="styles")
    written = write(rows([ev(1, 1)], None), tmp_path, "s3://styles/exports/2026-11-25", s3)
    assert (tmp_path / "interactions.csv").read_text().startswith("USER_ID,ITEM_ID")
    assert "s3://styles/exports/2026-11-25/interactions.csv" in written
    body = s3.get_object(Bucket="styles", Key="exports/2026-11-25/interactions-schema.json")["Body"].read()
    assert json.loads(body) == PERSONALIZE_SCHEMA
