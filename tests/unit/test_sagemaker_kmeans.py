"""SageMaker K-Means backend: SageMaker requests checked by botocore's Stubber, S3 by moto."""

import io
import tarfile
from datetime import UTC, datetime

import boto3
import numpy as np
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from jobs.sagemaker_kmeans import SageMakerError, SageMakerKMeans, kmeans_image, read_ndarray_list, write_ndarray_list

ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def model_tar(centroids: np.ndarray) -> bytes:
    data = write_ndarray_list([centroids])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("model_algo-1")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_ndarray_list_round_trip_and_errors():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    (back,) = read_ndarray_list(write_ndarray_list([a]))
    assert back.shape == (3, 4) and np.array_equal(back, a)
    with pytest.raises(SageMakerError, match="not an MXNet"):
        read_ndarray_list(b"\x00" * 32)
    with pytest.raises(SageMakerError, match="truncated"):
        read_ndarray_list(write_ndarray_list([a])[:60])
    assert kmeans_image("eu-west-1").endswith(".dkr.ecr.eu-west-1.amazonaws.com/kmeans:1")
    with pytest.raises(SageMakerError):
        kmeans_image("mars-north-1")


@mock_aws
def test_training_job_round_trip():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ml-bucket")
    centroids = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]], dtype=np.float32)
    artifact = "s3://ml-bucket/clusters/job-1/output/job-1/output/model.tar.gz"
    s3.put_object(Bucket="ml-bucket", Key=artifact.removeprefix("s3://ml-bucket/"), Body=model_tar(centroids))
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    sleeps = []
    backend = SageMakerKMeans(ROLE, "ml-bucket", "clusters", "us-east-1", sagemaker=sm, s3=s3, sleep=sleeps.append)
    vectors = np.eye(3, dtype=np.float32)
    with Stubber(sm) as stub:
        stub.add_response(
            "create_training_job",
            {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/job-1"},
            {
                "TrainingJobName": "job-1",
                "AlgorithmSpecification": {
                    "TrainingImage": "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1",
                    "TrainingInputMode": "File",
                },
                "RoleArn": ROLE,
                "InputDataConfig": ANY,
                "OutputDataConfig": {"S3OutputPath": "s3://ml-bucket/clusters/job-1/output/"},
                "ResourceConfig": ANY,
                "StoppingCondition": ANY,
                "HyperParameters": {"k": "2", "feature_dim": "3", "mini_batch_size": "3", "init_method": "kmeans++"},
            },
        )
        base = {
            "TrainingJobName": "job-1",
            "TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/job-1",
            "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "CreationTime": datetime.now(UTC),
            "ModelArtifacts": {"S3ModelArtifacts": artifact},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "SecondaryStatus": "Training",
        }
        stub.add_response(
            "describe_training_job", {**base, "TrainingJobStatus": "InProgress"}, {"TrainingJobName": "job-1"}
        )
        stub.add_response(
            "describe_training_job", {**base, "TrainingJobStatus": "Completed"}, {"TrainingJobName": "job-1"}
        )
        got = backend.fit(vectors, 2, "job-1")
        stub.assert_no_pending_responses()
    assert np.allclose(got, [[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    assert len(sleeps) == 1
    uploaded = s3.get_object(Bucket="ml-bucket", Key="clusters/job-1/train/vectors.csv")["Body"].read().decode()
    assert uploaded.splitlines()[0] == "1,0,0"


@mock_aws
def test_failed_job_is_a_clear_error():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ml-bucket")
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    backend = SageMakerKMeans(ROLE, "ml-bucket", "c", "us-east-1", sagemaker=sm, s3=s3, sleep=lambda s: None)
    with Stubber(sm) as stub:
        stub.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/j"})
        stub.add_response(
            "describe_training_job",
            {
                "TrainingJobName": "j",
                "TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/j",
                "AlgorithmSpecification": {"TrainingInputMode": "File"},
                "CreationTime": datetime.now(UTC),
                "ModelArtifacts": {"S3ModelArtifacts": ""},
                "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
                "SecondaryStatus": "Failed",
                "TrainingJobStatus": "Failed",
                "FailureReason": "ClientError: bad input",
            },
        )
        with pytest.raises(SageMakerError, match="Failed: ClientError: bad input"):
            backend.fit(np.eye(2, dtype=np.float32), 2, "j")
