"""K-Means on Amazon SageMaker's built-in algorithm, for catalogs too large to cluster in-process.

The vectors go to S3 as CSV (File mode), a training job runs the built-in ``kmeans`` image with
``k`` and ``feature_dim``, and the model artifact (``model.tar.gz`` holding ``model_algo-1``, an MXNet
NDArray list file with the (k, d) centroids) is read back without MXNet. The centroids are then
unit-normalised, as the rest of imgsearch expects (SageMaker clusters by Euclidean distance; on unit
vectors that ranks like cosine).

Tested with botocore's Stubber (SageMaker) and moto (S3); not run against AWS from here, and the
artifact reader was checked against files written to MXNet's documented format, not against a
real SageMaker artifact.
"""

from __future__ import annotations

import io
import logging
import struct
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

# the registry of the built-in kmeans image, per region (SageMaker docs: "Docker Registry Paths")
KMEANS_ACCOUNTS = {
    "us-east-1": "382416733822",
    "us-east-2": "404615174143",
    "us-west-2": "174872318107",
    "eu-west-1": "438346466558",
    "eu-central-1": "664544806723",
    "ap-northeast-1": "351501993468",
}
LIST_MAGIC = 0x112
NDARRAY_V1_MAGIC = 0xF993FAC8
NDARRAY_V2_MAGIC = 0xF993FAC9
MX_DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32}


class SageMakerError(RuntimeError):
    pass


def kmeans_image(region: str) -> str:
    if region not in KMEANS_ACCOUNTS:
        raise SageMakerError(f"no kmeans image registry known for {region}: set IMGSEARCH_SAGEMAKER_IMAGE")
    return f"{KMEANS_ACCOUNTS[region]}.dkr.ecr.{region}.amazonaws.com/kmeans:1"


def read_ndarray_list(data: bytes) -> list[NDArray[Any]]:
    """Parse an MXNet NDArray list file (dense arrays, format versions 1 and 2)."""
    buf = io.BytesIO(data)

    def read(fmt: str) -> Any:
        size = struct.calcsize(fmt)
        chunk = buf.read(size)
        if len(chunk) != size:
            raise SageMakerError("truncated NDArray file")
        return struct.unpack(fmt, chunk)

    header, _reserved = read("<QQ")
    if header != LIST_MAGIC:
        raise SageMakerError(f"not an MXNet NDArray list file (header {header:#x})")
    (count,) = read("<Q")
    arrays = []
    for _ in range(count):
        (magic,) = read("<I")
        if magic == NDARRAY_V2_MAGIC:
            (stype,) = read("<i")
            if stype != 0:
                raise SageMakerError(f"sparse NDArray (storage type {stype}) is not supported")
        elif magic != NDARRAY_V1_MAGIC:
            raise SageMakerError(f"unsupported NDArray format (magic {magic:#x})")
        (ndim,) = read("<I")
        shape = read(f"<{ndim}q") if ndim else ()
        if not ndim:
            arrays.append(np.zeros((0,), dtype=np.float32))
            continue
        read("<ii")  # context: device type, device id
        (type_flag,) = read("<i")
        dtype = np.dtype(MX_DTYPES.get(type_flag, np.float32)).newbyteorder("<")
        n = int(np.prod(shape))
        raw = buf.read(n * dtype.itemsize)
        if len(raw) != n * dtype.itemsize:
            raise SageMakerError("truncated NDArray data")
        arrays.append(np.frombuffer(raw, dtype=dtype).reshape(shape).astype(np.float32))
    return arrays


def write_ndarray_list(arrays: list[NDArray[Any]]) -> bytes:
    """MXNet's NDArray list format (version 2, dense, float32): for tests and local round trips."""
    out = io.BytesIO()
    out.write(struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays)))
    for arr in arrays:
        a = np.ascontiguousarray(arr, dtype="<f4")
        out.write(struct.pack("<Ii", NDARRAY_V2_MAGIC, 0))
        out.write(struct.pack("<I", a.ndim) + struct.pack(f"<{a.ndim}q", *a.shape))
        out.write(struct.pack("<iii", 1, 0, 0))
        out.write(a.tobytes())
    out.write(struct.pack("<Q", 0))  # no names
    return out.getvalue()


@dataclass
class SageMakerKMeans:
    role_arn: str
    bucket: str
    prefix: str
    region: str
    sagemaker: Any = None
    s3: Any = None
    instance_type: str = "ml.m5.large"
    image: str | None = None
    max_runtime_s: int = 3600
    poll_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        import boto3

        self.sagemaker = self.sagemaker or boto3.client("sagemaker", region_name=self.region)
        self.s3 = self.s3 or boto3.client("s3", region_name=self.region)

    def fit(self, vectors: NDArray[np.float32], k: int, job_name: str) -> NDArray[np.float32]:
        x = np.asarray(vectors, dtype=np.float32)
        csv = "\n".join(",".join(f"{v:.6g}" for v in row) for row in x) + "\n"
        key = f"{self.prefix.rstrip('/')}/{job_name}/train/vectors.csv"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=csv.encode())
        self.sagemaker.create_training_job(
            TrainingJobName=job_name,
            AlgorithmSpecification={
                "TrainingImage": self.image or kmeans_image(self.region),
                "TrainingInputMode": "File",
            },
            RoleArn=self.role_arn,
            InputDataConfig=[
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"s3://{self.bucket}/{key.rsplit('/', 1)[0]}/",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                    "ContentType": "text/csv;label_size=0",
                }
            ],
            OutputDataConfig={"S3OutputPath": f"s3://{self.bucket}/{self.prefix.rstrip('/')}/{job_name}/output/"},
            ResourceConfig={"InstanceType": self.instance_type, "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": self.max_runtime_s},
            HyperParameters={
                "k": str(k),
                "feature_dim": str(x.shape[1]),
                "mini_batch_size": str(min(5000, len(x))),
                "init_method": "kmeans++",
            },
        )
        artifact = self._wait(job_name)
        centroids = self._read_model(artifact)
        if centroids.shape[1] != x.shape[1]:
            raise SageMakerError(f"model has {centroids.shape[1]} features, expected {x.shape[1]}")
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return (centroids / norms).astype(np.float32)

    def _wait(self, job_name: str) -> str:
        deadline = time.monotonic() + self.max_runtime_s + 600
        while True:
            desc = self.sagemaker.describe_training_job(TrainingJobName=job_name)
            status = desc["TrainingJobStatus"]
            if status == "Completed":
                return str(desc["ModelArtifacts"]["S3ModelArtifacts"])
            if status in ("Failed", "Stopped"):
                raise SageMakerError(f"training job {job_name} {status}: {desc.get('FailureReason', '')}")
            if time.monotonic() > deadline:
                raise SageMakerError(f"training job {job_name} still {status} after its time limit")
            log.info("SageMaker training job %s: %s (%s)", job_name, status, desc.get("SecondaryStatus", ""))
            self.sleep(self.poll_s)

    def _read_model(self, s3_uri: str) -> NDArray[np.float32]:
        bucket, _, key = s3_uri.removeprefix("s3://").partition("/")
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            member = tar.extractfile("model_algo-1")
            if member is None:
                raise SageMakerError("model.tar.gz has no model_algo-1")
            arrays = read_ndarray_list(member.read())
        if not arrays or arrays[0].ndim != 2:
            raise SageMakerError("model_algo-1 holds no (k, d) centroid matrix")
        return arrays[0]
