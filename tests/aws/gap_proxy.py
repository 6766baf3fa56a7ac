#!/usr/bin/env python3
"""Gap-filling proxy: moto_server plus what it lacks, on one endpoint.

    python3 tests/aws/gap_proxy.py --port 47000 --upstream http://127.0.0.1:47001

Every request is forwarded to moto as received (Authorization included)
except:

- EC2 query actions moto lacks or gets wrong (ec2_gaps.py): ImportSnapshot,
  DescribeImportSnapshotTasks, Enable/DisableImageDeprecation,
  Get/Enable/DisableImageBlockPublicAccess(State); RegisterImage, CopyImage,
  DescribeImages, DescribeImageAttribute, ModifyImageAttribute are
  forwarded and completed with what moto drops.
- S3 integrity headers moto does not check (Content-MD5,
  x-amz-checksum-sha256, x-amz-checksum-crc32, a hex x-amz-content-sha256)
  are verified as S3 does; a mismatch is answered with S3's error.
- EBS direct APIs: PutSnapshotBlock's x-amz-Checksum and DataLength and
  CompleteSnapshot's LINEAR aggregate checksum and ChangedBlocksCount are
  verified as EBS does, and BlockSize is reported as EBS's 524288 (moto
  says 512).

Test control (not AWS):
  GET  /_gap/health
  GET  /_gap/state                              tasks, deprecations, image attributes
  GET  /_gap/image-block-public-access[?region=R]
  POST /_gap/image-block-public-access?state=block-new-sharing|unblocked[&region=R]
  POST /_gap/config   {"import_polls": N}       DescribeImportSnapshotTasks calls until completed
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
import threading
import zlib
from urllib.parse import parse_qsl

import ec2_gaps
from proxy_common import (Request, Response, UpstreamError, attribute_service, ec2_error, forward,
                          json_error, json_response, parse_upstream, query_error, request_kind, s3_error,
                          serve)

EBS_BLOCK_SIZE = 524288  # EBS direct APIs: "the only supported length is 524288 bytes"


class GapProxy:
    def __init__(self, upstream_url: str):
        self.upstream = parse_upstream(upstream_url)
        self.ec2 = ec2_gaps.Ec2Gaps(upstream_url)
        self.lock = threading.Lock()
        self.volume_gib: dict[str, int] = {}        # snapshot id -> VolumeSize from StartSnapshot
        self.block_digests: dict[str, dict[int, bytes]] = {}  # snapshot id -> index -> sha256

    def forward(self, req: Request) -> Response:
        return forward(self.upstream, req)

    def __call__(self, handler, req: Request) -> None:
        if req.path.startswith("/_gap/"):
            handler.send(self.control(req))
            return
        attribute_service(req)
        try:
            if req.service == "ec2":
                resp = self.ec2.handle(req, self.forward)
            elif req.service == "ebs":
                resp = self.ebs(req)
            elif req.service == "s3":
                resp = self.s3_check(req) or self.forward(req)
            else:
                resp = self.forward(req)
        except UpstreamError as e:
            msg = f"gap proxy: moto unreachable: {e}"
            resp = (ec2_error(503, "Unavailable", msg) if req.service == "ec2"
                    else json_error(503, "ServiceUnavailableException", msg) if req.service == "ebs"
                    else query_error(503, "ServiceUnavailable", msg) if req.service in ("iam", "sts")
                    else s3_error(503, "ServiceUnavailable", msg))
        handler.send(resp)

    # --- test control -------------------------------------------------------

    def control(self, req: Request) -> Response:
        q = dict(parse_qsl(req.query))
        if req.path == "/_gap/health":
            return json_response({"ok": True, "upstream": "%s:%d" % self.upstream})
        if req.path == "/_gap/image-block-public-access":
            if req.method == "POST":
                try:
                    self.ec2.set_block_public_state(q.get("state", ""), q.get("region"))
                except ValueError as e:
                    return json_response({"error": str(e)}, 400)
            return json_response({"state": self.ec2.block_public_state(q.get("region", "us-east-1"))})
        if req.path == "/_gap/config" and req.method == "POST":
            try:
                cfg = json.loads(req.body or b"{}")
                if "import_polls" in cfg:
                    self.ec2.import_polls = max(1, int(cfg["import_polls"]))
            except (ValueError, TypeError) as e:
                return json_response({"error": f"bad config: {e}"}, 400)
            return json_response({"import_polls": self.ec2.import_polls})
        if req.path == "/_gap/state":
            with self.ec2.lock:
                return json_response({
                    "import_tasks": {t.id: {"region": t.region, "format": t.format, "polls": t.polls,
                                            "done": t.done.is_set(), "snapshot_id": t.snapshot_id,
                                            "error": t.error} for t in self.ec2.tasks.values()},
                    "deprecations": self.ec2.deprecations,
                    "images": {k: {a: (None if v is ec2_gaps.REMOVE else v) for a, v in attrs.items()}
                               for k, attrs in self.ec2.images.items()},
                    "block_public_access": {"default": self.ec2.block_default, **self.ec2.block_state},
                    "import_polls": self.ec2.import_polls})
        return json_response({"error": f"unknown control endpoint {req.method} {req.path}"}, 404)

    # --- S3 -----------------------------------------------------------------

    def s3_check(self, req: Request) -> Response | None:
        """S3's integrity checks that moto skips; None when the request passes."""
        resource = req.path
        content_sha = req.header("x-amz-content-sha256", "") or ""
        encoding = (req.header("Content-Encoding", "") or "").lower()
        if content_sha.startswith("STREAMING-") or "aws-chunked" in encoding:
            return None  # body carries chunk signatures/trailers: moto decodes it
        if re.fullmatch(r"[0-9a-fA-F]{64}", content_sha):
            if hashlib.sha256(req.body).hexdigest() != content_sha.lower():
                return s3_error(400, "XAmzContentSHA256Mismatch",
                                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                                resource)
        md5 = req.header("Content-MD5")
        if md5 is not None:
            try:
                want = base64.b64decode(md5, validate=True)
            except ValueError:
                want = b""
            if len(want) != 16:
                return s3_error(400, "InvalidDigest", "The Content-MD5 you specified was invalid.", resource)
            if hashlib.md5(req.body).digest() != want:
                return s3_error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.",
                                resource)
        sha = req.header("x-amz-checksum-sha256")
        if sha is not None and base64.b64encode(hashlib.sha256(req.body).digest()).decode() != sha:
            return s3_error(400, "BadDigest", "The SHA256 you specified did not match the calculated checksum.",
                            resource)
        crc = req.header("x-amz-checksum-crc32")
        if crc is not None and base64.b64encode(zlib.crc32(req.body).to_bytes(4, "big")).decode() != crc:
            return s3_error(400, "BadDigest", "The CRC32 you specified did not match the calculated checksum.",
                            resource)
        return None

    # --- EBS direct APIs ----------------------------------------------------

    def ebs(self, req: Request) -> Response:
        kind, target = request_kind(req)
        if kind == "ebs:PutSnapshotBlock":
            return self.put_block(req, target)
        if kind == "ebs:CompleteSnapshot":
            return self.complete(req, target)
        resp = self.forward(req)
        if kind in ("ebs:StartSnapshot", "ebs:ListSnapshotBlocks", "ebs:ListChangedBlocks") and resp.status < 300:
            doc = json.loads(resp.body or b"{}")
            if "BlockSize" in doc:
                doc["BlockSize"] = EBS_BLOCK_SIZE
            if kind == "ebs:StartSnapshot" and "SnapshotId" in doc:
                with self.lock:
                    self.volume_gib[doc["SnapshotId"]] = int(doc.get("VolumeSize", 0))
                    self.block_digests[doc["SnapshotId"]] = {}
            resp = Response(resp.status, resp.headers, json.dumps(doc).encode(), resp.reason)
        return resp

    @staticmethod
    def _invalid(message: str) -> Response:
        return json_error(400, "ValidationException", message, {"Reason": "INVALID_PARAMETER_VALUE"})

    def put_block(self, req: Request, target: str) -> Response:
        snap, _, idx_text = target.partition("/")
        algo = req.header("x-amz-Checksum-Algorithm", "")
        checksum = req.header("x-amz-Checksum", "")
        length = req.header("x-amz-Data-Length", "")
        if algo != "SHA256":
            return self._invalid(f"PutSnapshotBlock: x-amz-Checksum-Algorithm must be SHA256, got {algo!r}")
        if not checksum:
            return self._invalid("PutSnapshotBlock: the x-amz-Checksum header is required")
        if length != str(len(req.body)):
            return self._invalid(f"PutSnapshotBlock: x-amz-Data-Length {length!r} but the body has {len(req.body)} bytes")
        if len(req.body) != EBS_BLOCK_SIZE:
            return self._invalid(f"PutSnapshotBlock: DataLength must be {EBS_BLOCK_SIZE}, got {len(req.body)}")
        digest = hashlib.sha256(req.body).digest()
        if base64.b64encode(digest).decode() != checksum:
            return self._invalid("PutSnapshotBlock: the checksum of the block data does not match x-amz-Checksum")
        with self.lock:
            gib = self.volume_gib.get(snap)
        if not idx_text.isdigit() or (gib and int(idx_text) >= gib * (1 << 30) // EBS_BLOCK_SIZE):
            return self._invalid(f"PutSnapshotBlock: block index {idx_text} is outside the {gib} GiB volume")
        resp = self.forward(req)
        if resp.status < 300:
            with self.lock:
                self.block_digests.setdefault(snap, {})[int(idx_text)] = digest
        return resp

    def complete(self, req: Request, snap: str) -> Response:
        count = req.header("x-amz-ChangedBlocksCount")
        checksum = req.header("x-amz-Checksum")
        with self.lock:
            digests = dict(self.block_digests.get(snap, {})) if snap in self.block_digests else None
        if count is None or not count.isdigit():
            return self._invalid("CompleteSnapshot: x-amz-ChangedBlocksCount is required")
        if digests is not None:  # started through this proxy: every block was seen
            if int(count) != len(digests):
                return self._invalid(f"CompleteSnapshot: ChangedBlocksCount {count} but {len(digests)} blocks were written")
            if checksum:
                if req.header("x-amz-Checksum-Algorithm") != "SHA256" or \
                        req.header("x-amz-Checksum-Aggregation-Method") != "LINEAR":
                    return self._invalid("CompleteSnapshot: a checksum needs algorithm SHA256 and aggregation LINEAR")
                linear = hashlib.sha256(b"".join(digests[i] for i in sorted(digests))).digest()
                if base64.b64encode(linear).decode() != checksum:
                    return self._invalid("CompleteSnapshot: the aggregated checksum does not match the blocks written")
        return self.forward(req)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=47000)
    ap.add_argument("--upstream", default="http://127.0.0.1:47001", help="moto_server URL")
    args = ap.parse_args()
    serve(args.host, args.port, GapProxy(args.upstream))


if __name__ == "__main__":
    sys.exit(main())
