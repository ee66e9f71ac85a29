"""Object storage: boto3 against any S3-compatible server, or a local directory for the embedded mode.

Customers get objects through presigned URLs: S3 signs them itself; the local backend signs a path under
the API (`/v1/storage/...`) with an HMAC and an expiry, which `verify_local_signature` checks.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote

import boto3
from botocore.client import Config
from botocore.exceptions import ClientError

from app.core.config import Settings, get_settings


class ObjectNotFound(Exception):
    pass


class ObjectStorage(Protocol):
    def upload_file(self, key: str, path: Path, content_type: str) -> None: ...
    def upload_stream(self, key: str, stream: BinaryIO, content_type: str) -> None: ...
    def download_file(self, key: str, path: Path) -> None: ...
    def size(self, key: str) -> int: ...
    def delete(self, key: str) -> None: ...
    def presigned_url(self, key: str, ttl_s: int, filename: str | None = None) -> str: ...
    def ping(self) -> None: ...


class S3Storage:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        config = Config(
            signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 3}
        )
        common = {
            "region_name": settings.s3_region,
            "aws_access_key_id": settings.s3_access_key_id or None,
            "aws_secret_access_key": settings.s3_secret_access_key or None,
            "config": config,
        }
        self.client = boto3.client("s3", endpoint_url=settings.s3_endpoint_url or None, **common)
        # Presigned URLs carry the host in their signature, so they are signed for the public host.
        public = settings.s3_public_endpoint_url or settings.s3_endpoint_url or None
        self.public_client = boto3.client("s3", endpoint_url=public, **common)

    def upload_file(self, key: str, path: Path, content_type: str) -> None:
        self.client.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})

    def upload_stream(self, key: str, stream: BinaryIO, content_type: str) -> None:
        self.client.upload_fileobj(stream, self.bucket, key, ExtraArgs={"ContentType": content_type})

    def download_file(self, key: str, path: Path) -> None:
        try:
            self.client.download_file(self.bucket, key, str(path))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise ObjectNotFound(key) from error
            raise

    def size(self, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as error:
            raise ObjectNotFound(key) from error

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def presigned_url(self, key: str, ttl_s: int, filename: str | None = None) -> str:
        params = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = self.public_client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_s)
        return url

    def ping(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)


def local_signature(secret: str, key: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def verify_local_signature(secret: str, key: str, expires: int, signature: str, max_ttl_s: int) -> bool:
    """A valid, unexpired link whose expiry is no further ahead than links are ever issued for (one signed
    with a leaked secret still cannot live longer than the presign TTL)."""
    now = time.time()
    if expires < now or expires > now + max_ttl_s:
        return False
    return hmac.compare_digest(local_signature(secret, key, expires), signature)


class LocalStorage:
    def __init__(self, settings: Settings) -> None:
        self.root = Path(settings.local_storage_dir).resolve()
        self.base_url = settings.public_base_url.rstrip("/")
        self.secret = settings.storage_signing_secret

    def path_for(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ObjectNotFound(key)
        return path

    def upload_file(self, key: str, path: Path, content_type: str) -> None:
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def upload_stream(self, key: str, stream: BinaryIO, content_type: str) -> None:
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with partial.open("wb") as out:
            shutil.copyfileobj(stream, out, 1024 * 1024)
        partial.replace(target)

    def download_file(self, key: str, path: Path) -> None:
        source = self.path_for(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        shutil.copyfile(source, path)

    def size(self, key: str) -> int:
        source = self.path_for(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        return source.stat().st_size

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def presigned_url(self, key: str, ttl_s: int, filename: str | None = None) -> str:
        expires = int(time.time()) + ttl_s
        signature = local_signature(self.secret, key, expires)
        return f"{self.base_url}/v1/storage/{quote(key)}?expires={expires}&signature={signature}"

    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.root.is_dir():
            raise OSError(f"{self.root} is not a directory")


@lru_cache(maxsize=4)
def _storage_for(settings_key: str) -> ObjectStorage:
    settings = get_settings()
    if settings.storage_backend == "local":
        return LocalStorage(settings)
    return S3Storage(settings)


def get_storage() -> ObjectStorage:
    settings = get_settings()
    key = "|".join(
        [settings.storage_backend, settings.s3_endpoint_url, settings.s3_bucket, settings.local_storage_dir]
    )
    return _storage_for(key)


_presigned: dict[tuple[int, str, str | None], tuple[str, datetime, float]] = {}
_presigned_lock = threading.Lock()
_PRESIGN_REUSE_S = 60.0


def presigned_url_with_expiry(
    storage: ObjectStorage, key: str, ttl_s: int, filename: str | None = None
) -> tuple[str, datetime]:
    """A presigned URL and when it expires, reused for up to a minute: signing costs more than the rest of
    a status poll, and clients poll a finished job many times."""
    cache_key = (id(storage), key, filename)
    now = time.monotonic()
    with _presigned_lock:
        entry = _presigned.get(cache_key)
    if entry is not None and now - entry[2] < _PRESIGN_REUSE_S:
        return entry[0], entry[1]
    url = storage.presigned_url(key, ttl_s, filename=filename)
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
    with _presigned_lock:
        if len(_presigned) > 10_000:
            _presigned.clear()
        _presigned[cache_key] = (url, expires_at, now)
    return url, expires_at


def output_key(job_id: object) -> str:
    return f"jobs/{job_id}/output.mp4"


def input_key(job_id: object, name: str) -> str:
    return f"jobs/{job_id}/inputs/{name}"


def file_key(account_id: object, file_id: object) -> str:
    return f"files/{account_id}/{file_id}"


def preflight_frame_key(preflight_id: object) -> str:
    return f"preflights/{preflight_id}/frame.jpg"
