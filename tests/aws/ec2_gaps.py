"""The EC2 query actions that moto 5.2 lacks or gets wrong, for gap_proxy.py.

Each handler follows the EC2 API reference
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/) and botocore's
service model for element names; where the reference does not give an
error's exact wording, the message is ours and README.md says so. State
lives in this process (lost on restart, as moto's is) and is shared by all
tests of a run, as moto's state is: tests must use unique names.

Side effects in moto (the imported snapshot, tags) are made through boto3
against moto directly (not through the proxies), with dummy credentials.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import secrets
import sys
import threading
import traceback
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

import boto3
import botocore.config
from botocore.exceptions import ClientError

import disk_images
from proxy_common import EC2_NS, Response, ec2_error

GIB = 1 << 30
REMOVE = "\0remove"  # attribute value: drop moto's element without a replacement (survives deepcopy)

# Valid values, from the API reference.
ARCHITECTURES = {"i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac"}
BOOT_MODES = {"legacy-bios", "uefi", "uefi-preferred"}
VIRTUALIZATION_TYPES = {"hvm", "paravirtual"}
BLOCK_STATES = {"unblocked", "block-new-sharing"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def _from_client_error(e: ClientError) -> ApiError:
    err = e.response.get("Error", {})
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    return ApiError(status, err.get("Code") or "InternalError", err.get("Message") or err.get("Code") or str(e))


def _xml(name: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    if isinstance(value, dict):
        return f"<{name}>" + "".join(_xml(k, v) for k, v in value.items()) + f"</{name}>"
    if isinstance(value, list):
        return f"<{name}>" + "".join(_xml("item", v) for v in value) + f"</{name}>"
    return f"<{name}>{escape(str(value))}</{name}>"


def ec2_response(action: str, fields: dict) -> Response:
    rid = str(uuid.uuid4())
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{EC2_NS}">'
            f"<requestId>{rid}</requestId>" + "".join(_xml(k, v) for k, v in fields.items()) +
            f"</{action}Response>")
    return Response(200, [("Content-Type", "text/xml;charset=UTF-8"), ("x-amzn-RequestId", rid)], body.encode())


def indexed(params: dict, prefix: str) -> list[dict]:
    """EC2 query lists: Prefix.N[.Rest] -> [{Rest: value}] ordered by N."""
    groups: dict[int, dict] = {}
    pat = re.compile(re.escape(prefix) + r"\.(\d+)(?:\.(.+))?$")
    for k, v in params.items():
        m = pat.match(k)
        if m:
            groups.setdefault(int(m.group(1)), {})[m.group(2) or ""] = v
    return [groups[i] for i in sorted(groups)]


def tag_specs(params: dict) -> list[tuple[str, list[dict]]]:
    """TagSpecification.N -> [(ResourceType, [{"Key":..,"Value":..}])]."""
    out = []
    for spec in indexed(params, "TagSpecification"):
        tags = [{"Key": t.get("Key", ""), "Value": t.get("Value", "")} for t in indexed(spec, "Tag")]
        out.append((spec.get("ResourceType", ""), tags))
    return out


def _true(v: str | None) -> bool:
    return (v or "").lower() == "true"


class ImportTask:
    def __init__(self, task_id: str, region: str, fmt: str, bucket: str, key: str, url: str,
                 description: str, disk_description: str, tags: list, signature: tuple):
        self.id, self.region, self.format = task_id, region, fmt
        self.bucket, self.key, self.url = bucket, key, url
        self.description, self.disk_description, self.tags = description, disk_description, tags
        self.signature = signature
        self.polls = 0
        self.size: int | None = None
        self.snapshot_id: str | None = None
        self.error: str | None = None
        self.done = threading.Event()


class Ec2Gaps:
    def __init__(self, moto_url: str, import_polls: int = 2):
        self.moto_url = moto_url
        self.import_polls = import_polls  # DescribeImportSnapshotTasks calls until "completed"
        self.lock = threading.Lock()
        self.tasks: dict[str, ImportTask] = {}
        self.tokens: dict[tuple, str] = {}
        self.deprecations: dict[str, str] = {}
        self.images: dict[str, dict] = {}
        self.block_default = "unblocked"
        self.block_state: dict[str, str] = {}
        self._session = boto3.session.Session()
        self._clients: dict[tuple, object] = {}

    # --- plumbing -----------------------------------------------------------

    def client(self, service: str, region: str):
        with self.lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service, endpoint_url=self.moto_url, region_name=region,
                    aws_access_key_id="test", aws_secret_access_key="test",
                    config=botocore.config.Config(retries={"max_attempts": 1},
                                                  s3={"addressing_style": "path"}))
            return self._clients[key]

    def _call(self, service: str, region: str, op: str, **kwargs):
        try:
            return getattr(self.client(service, region), op)(**kwargs)
        except ClientError as e:
            raise _from_client_error(e) from None

    def _image(self, region: str, image_id: str) -> dict:
        images = self._call("ec2", region, "describe_images", ImageIds=[image_id])["Images"]
        if not images:
            raise ApiError(400, "InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")
        return images[0]

    HANDLED = {"ImportSnapshot", "DescribeImportSnapshotTasks", "EnableImageDeprecation",
               "DisableImageDeprecation", "GetImageBlockPublicAccessState", "EnableImageBlockPublicAccess",
               "DisableImageBlockPublicAccess", "RegisterImage", "CopyImage", "DeregisterImage",
               "DescribeImages", "ModifyImageAttribute", "DescribeImageAttribute", "ResetImageAttribute"}
    # Answered here entirely (moto never sees them): DryRun is ours to answer.
    OWN = {"ImportSnapshot", "DescribeImportSnapshotTasks", "EnableImageDeprecation",
           "DisableImageDeprecation", "GetImageBlockPublicAccessState", "EnableImageBlockPublicAccess",
           "DisableImageBlockPublicAccess", "ResetImageAttribute"}

    def handle(self, req, forward) -> Response:
        action = req.params.get("Action", "")
        if action not in self.HANDLED:
            return self._unimplemented(action, forward(req))
        if action in self.OWN and _true(req.params.get("DryRun")):
            return ec2_error(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
        try:
            return getattr(self, "_" + action)(req, forward)
        except ApiError as e:
            return ec2_error(e.status, e.code, e.message)

    @staticmethod
    def _unimplemented(action: str, resp: Response) -> Response:
        # moto answers an EC2 action it lacks with Flask's HTML 500 page, which
        # a client would retry; make it a clear, final error instead.
        if resp.status == 500 and not resp.body.lstrip().startswith(b"<?xml"):
            return ec2_error(400, "InvalidAction",
                             f"moto does not implement EC2 action {action} and neither does the gap proxy "
                             f"(tests/aws/README.md lists what is served)")
        return resp

    # --- ImportSnapshot -----------------------------------------------------

    def _ImportSnapshot(self, req, forward) -> Response:
        p = req.params
        fmt = p.get("DiskContainer.Format", "").upper()
        if fmt and fmt not in ("RAW", "VHD", "VMDK"):
            raise ApiError(400, "InvalidParameter",
                           f"Unsupported disk image format: {p['DiskContainer.Format']}. Valid values: VHD | VMDK | RAW")
        url = p.get("DiskContainer.Url", "")
        bucket = p.get("DiskContainer.UserBucket.S3Bucket", "")
        key = p.get("DiskContainer.UserBucket.S3Key", "")
        if url and (bucket or key):
            raise ApiError(400, "InvalidParameter", "Specify either DiskContainer.Url or DiskContainer.UserBucket, not both")
        if url:
            u = urlsplit(url)
            if u.scheme == "s3":
                bucket, key = u.netloc, unquote(u.path.lstrip("/"))
            elif u.scheme in ("http", "https"):  # path-style object URL, presigned or not
                bucket, _, key = unquote(u.path.lstrip("/")).partition("/")
            else:
                raise ApiError(400, "InvalidParameter", f"DiskContainer.Url must be an s3:// or https:// URL, got {url!r}")
        if not bucket or not key:
            raise ApiError(400, "MissingParameter",
                           "The request must contain the parameter DiskContainer.UserBucket (S3Bucket and S3Key) or DiskContainer.Url")
        tags = []
        for rtype, t in tag_specs(p):
            if rtype != "import-snapshot-task":
                raise ApiError(400, "InvalidParameterValue",
                               f"'{rtype}' is not a valid taggable resource type for this operation.")
            tags += t
        signature = (fmt, bucket, key, url, p.get("Description", ""), p.get("DiskContainer.Description", ""))
        token = p.get("ClientToken", "")
        with self.lock:
            existing = self.tasks.get(self.tokens.get((req.region, token), "")) if token else None
            if existing is None:
                task = ImportTask("import-snap-" + secrets.token_hex(9)[:17], req.region, fmt, bucket, key, url,
                                  p.get("Description", ""), p.get("DiskContainer.Description", ""), tags, signature)
                self.tasks[task.id] = task
                if token:
                    self.tokens[(req.region, token)] = task.id
        if existing is not None:
            if existing.signature != signature:
                raise ApiError(400, "IdempotentParameterMismatch",
                               f"Client token {token} was already used with different parameters")
            task = existing
        else:
            threading.Thread(target=self._run_import, args=(task,), daemon=True).start()
        return ec2_response("ImportSnapshot", {
            "description": task.description or None, "importTaskId": task.id,
            "snapshotTaskDetail": self._detail(task, initial=existing is None),
            "tagSet": [{"key": t["Key"], "value": t["Value"]} for t in task.tags] or None})

    def _detail(self, task: ImportTask, initial: bool = False) -> dict:
        completed = not initial and task.done.is_set() and task.polls >= self.import_polls
        d = {"description": task.disk_description or None,
             "diskImageSize": float(task.size) if task.size is not None else None,
             "encrypted": False, "format": task.format or None}
        if completed and task.error:
            d.update(status="deleted", statusMessage=task.error)
        elif completed:
            d.update(snapshotId=task.snapshot_id, status="completed")
        elif initial:
            d.update(status="active", statusMessage="pending")
        else:
            d.update(progress=str(min(90, 20 * task.polls + 10)), status="active", statusMessage="converting")
        if task.url:
            d["url"] = task.url
        else:
            d["userBucket"] = {"s3Bucket": task.bucket, "s3Key": task.key}
        return d

    def _run_import(self, task: ImportTask) -> None:
        try:
            try:
                obj = self.client("s3", task.region).get_object(Bucket=task.bucket, Key=task.key)
                data = obj["Body"].read()
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                raise disk_images.DiskError(
                    "Invalid S3 source location" if code in ("NoSuchKey", "NoSuchBucket", "404")
                    else f"We do not have access to the given resource. Reason {code}") from None
            task.size = len(data)
            if not task.format:
                task.format = "VHD" if data[-512:][:8] == b"conectix" else "VMDK" if data[:4] == b"KDMV" else "RAW"
            disk = disk_images.decode(task.format, data)
            del data
            ebs = self.client("ebs", task.region)
            snap = ebs.start_snapshot(VolumeSize=max(1, -(-disk.size // GIB)),
                                      Description=f"Created by AWS-VMImport service for {task.id}")
            count = 0
            for idx, block in disk.nonzero_blocks():
                digest = base64.b64encode(hashlib.sha256(block).digest()).decode()
                ebs.put_snapshot_block(SnapshotId=snap["SnapshotId"], BlockIndex=idx, BlockData=block,
                                       DataLength=len(block), Checksum=digest, ChecksumAlgorithm="SHA256")
                count += 1
            ebs.complete_snapshot(SnapshotId=snap["SnapshotId"], ChangedBlocksCount=count)
            task.snapshot_id = snap["SnapshotId"]
        except disk_images.DiskError as e:
            task.error = f"ClientError: Disk validation failed [{e}]"
        except Exception as e:  # a bug here or in moto: visible in the task and the log
            traceback.print_exc(file=sys.stderr)
            task.error = f"ServerError: gap proxy import failed: {e}"
        finally:
            task.done.set()

    def _DescribeImportSnapshotTasks(self, req, forward) -> Response:
        ids = [g[""] for g in indexed(req.params, "ImportTaskId")]
        with self.lock:
            if ids:
                tasks = []
                for i in ids:
                    t = self.tasks.get(i)
                    if t is None or t.region != req.region:
                        code = ("InvalidConversionTaskId" if re.fullmatch(r"import-snap-[0-9a-f]{8,17}", i)
                                else "InvalidConversionTaskId.Malformed")
                        raise ApiError(400, code, f"The import task ID '{i}' does not exist")
                    tasks.append(t)
            else:
                tasks = [t for t in self.tasks.values() if t.region == req.region]
            for t in tasks:
                t.polls += 1
        items = [{"description": t.description or None, "importTaskId": t.id,
                  "snapshotTaskDetail": self._detail(t),
                  "tagSet": [{"key": x["Key"], "value": x["Value"]} for x in t.tags] or None} for t in tasks]
        return ec2_response("DescribeImportSnapshotTasks", {"importSnapshotTaskSet": items})

    # --- deprecation --------------------------------------------------------

    def _EnableImageDeprecation(self, req, forward) -> Response:
        image_id = req.params.get("ImageId", "")
        raw = req.params.get("DeprecateAt", "")
        if not image_id or not raw:
            raise ApiError(400, "MissingParameter", "The request must contain the parameters ImageId and DeprecateAt")
        image = self._image(req.region, image_id)
        try:
            at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, "InvalidParameterValue", f"Invalid value '{raw}' for DeprecateAt") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        # "If you specify a value for seconds, Amazon EC2 rounds the seconds to the nearest minute."
        at = (at.astimezone(timezone.utc) + timedelta(seconds=30)).replace(second=0, microsecond=0)
        now = datetime.now(timezone.utc)
        if at < now:
            raise ApiError(400, "InvalidParameterValue", "The deprecation time can't be in the past.")
        if image.get("Public"):
            created = datetime.fromisoformat(image["CreationDate"].replace("Z", "+00:00"))
            if at > created + timedelta(days=2 * 365):
                raise ApiError(400, "InvalidParameterValue",
                               "The deprecation time of a public AMI can be at most 2 years after its creation date.")
        elif at > now + timedelta(days=10 * 365):
            raise ApiError(400, "InvalidParameterValue", "The deprecation time can be at most 10 years from now.")
        with self.lock:
            self.deprecations[image_id] = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return ec2_response("EnableImageDeprecation", {"return": True})

    def _DisableImageDeprecation(self, req, forward) -> Response:
        image_id = req.params.get("ImageId", "")
        self._image(req.region, image_id)
        with self.lock:
            self.deprecations.pop(image_id, None)
        return ec2_response("DisableImageDeprecation", {"return": True})

    # --- block public access ------------------------------------------------

    def block_public_state(self, region: str) -> str:
        with self.lock:
            return self.block_state.get(region, self.block_default)

    def set_block_public_state(self, state: str, region: str | None = None) -> None:
        if state not in BLOCK_STATES:
            raise ValueError(f"state must be one of {sorted(BLOCK_STATES)}, got {state!r}")
        with self.lock:
            if region:
                self.block_state[region] = state
            else:
                self.block_default = state
                self.block_state.clear()

    def _GetImageBlockPublicAccessState(self, req, forward) -> Response:
        return ec2_response("GetImageBlockPublicAccessState", {
            "imageBlockPublicAccessState": self.block_public_state(req.region), "managedBy": "account"})

    def _EnableImageBlockPublicAccess(self, req, forward) -> Response:
        state = req.params.get("ImageBlockPublicAccessState", "")
        if state != "block-new-sharing":
            raise ApiError(400, "InvalidParameterValue",
                           f"Value ({state}) for parameter ImageBlockPublicAccessState is invalid. Valid values: block-new-sharing")
        self.set_block_public_state(state, req.region)
        return ec2_response("EnableImageBlockPublicAccess", {"imageBlockPublicAccessState": state})

    def _DisableImageBlockPublicAccess(self, req, forward) -> Response:
        self.set_block_public_state("unblocked", req.region)
        return ec2_response("DisableImageBlockPublicAccess", {"imageBlockPublicAccessState": "unblocked"})

    def _ModifyImageAttribute(self, req, forward) -> Response:
        p = req.params
        adds_all = any(g.get("Group") == "all" for g in indexed(p, "LaunchPermission.Add"))
        adds_all |= p.get("OperationType") == "add" and any(g[""] == "all" for g in indexed(p, "UserGroup"))
        if adds_all and self.block_public_state(req.region) == "block-new-sharing":
            raise ApiError(400, "OperationNotPermitted",
                           "You can\u2019t publicly share this image because block public access for AMIs is "
                           "enabled for this account. To publicly share the image, you must call the "
                           "DisableImageBlockPublicAccess API.")
        return forward(req)

    def _ResetImageAttribute(self, req, forward) -> Response:
        # "currently you can only reset the launch permission attribute"
        image_id, attr = req.params.get("ImageId", ""), req.params.get("Attribute", "")
        if attr != "launchPermission":
            raise ApiError(400, "InvalidParameterValue",
                           f"Value ({attr}) for parameter attribute is invalid. Valid values: launchPermission")
        self._image(req.region, image_id)
        perms = self._call("ec2", req.region, "describe_image_attribute", ImageId=image_id,
                           Attribute="launchPermission").get("LaunchPermissions", [])
        if perms:
            self._call("ec2", req.region, "modify_image_attribute", ImageId=image_id,
                       LaunchPermission={"Remove": perms})
        return ec2_response("ResetImageAttribute", {"return": True})

    # --- RegisterImage / CopyImage: what moto drops --------------------------

    def _RegisterImage(self, req, forward) -> Response:
        p = req.params
        name = p.get("Name", "")
        if not name:
            raise ApiError(400, "MissingParameter", "The request must contain the parameter name")
        for param, valid in (("Architecture", ARCHITECTURES), ("BootMode", BOOT_MODES),
                             ("VirtualizationType", VIRTUALIZATION_TYPES), ("ImdsSupport", {"v2.0"}),
                             ("TpmSupport", {"v2.0"})):
            if param in p and p[param] not in valid:
                raise ApiError(400, "InvalidParameterValue",
                               f"Value ({p[param]}) for parameter {param[0].lower() + param[1:]} is invalid. "
                               f"Valid values: {', '.join(sorted(valid))}")
        existing = self._call("ec2", req.region, "describe_images", Owners=["self"],
                              Filters=[{"Name": "name", "Values": [name]}])["Images"]
        if existing:
            raise ApiError(400, "InvalidAMIName.Duplicate",
                           f"AMI name {name} is already in use by AMI {existing[0]['ImageId']}")
        bdms = indexed(p, "BlockDeviceMapping")
        snap_ids = [b["Ebs.SnapshotId"] for b in bdms if b.get("Ebs.SnapshotId")]
        sizes = {}
        if snap_ids:
            try:
                snaps = self._call("ec2", req.region, "describe_snapshots", SnapshotIds=snap_ids)["Snapshots"]
            except ApiError as e:
                if e.code == "InvalidSnapshot.NotFound":  # moto gives no message
                    e.message = f"The snapshot '{', '.join(snap_ids)}' does not exist."
                raise
            sizes = {s["SnapshotId"]: s.get("VolumeSize") for s in snaps}
        resp = forward(req)
        image_id = _image_id(resp)
        if not image_id:
            return resp
        attrs = {
            "architecture": p.get("Architecture"),
            # RegisterImage: "Default: paravirtual"
            "virtualizationType": p.get("VirtualizationType", "paravirtual"),
            "hypervisor": "xen",
            "rootDeviceName": p.get("RootDeviceName"),
            "rootDeviceType": "ebs" if snap_ids else None,
            "blockDeviceMapping": [_bdm_view(b, sizes) for b in bdms] if bdms else None,
            "bootMode": p.get("BootMode", REMOVE),
            "enaSupport": True if _true(p.get("EnaSupport")) else REMOVE,
            "imdsSupport": p.get("ImdsSupport"),
            "tpmSupport": p.get("TpmSupport"),
            "sriovNetSupport": p.get("SriovNetSupport", REMOVE),
        }
        with self.lock:
            self.images[image_id] = {k: v for k, v in attrs.items() if v is not None}
        self._apply_tags(req.region, tag_specs(p), image_id, snap_ids)
        return resp

    def _apply_tags(self, region: str, specs, image_id: str, snap_ids: list) -> None:
        for rtype, tags in specs:
            targets = [image_id] if rtype == "image" else snap_ids if rtype == "snapshot" else []
            if tags and targets:
                self._call("ec2", region, "create_tags", Resources=targets, Tags=tags)

    def _CopyImage(self, req, forward) -> Response:
        p = req.params
        resp = forward(req)
        new_id = _image_id(resp)
        if not new_id:
            return resp
        src_id, src_region = p.get("SourceImageId", ""), p.get("SourceRegion", req.region)
        new_image = self._image(req.region, new_id)
        new_snaps = [m["Ebs"]["SnapshotId"] for m in new_image.get("BlockDeviceMappings", []) if "Ebs" in m]
        with self.lock:
            src_attrs = copy.deepcopy(self.images.get(src_id))
        if src_attrs:
            for m in src_attrs.get("blockDeviceMapping", []):
                if "ebs" in m and new_snaps:  # the copy's snapshot is a new one in this region
                    m["ebs"]["snapshotId"] = new_snaps.pop(0)
            with self.lock:
                self.images[new_id] = src_attrs
        if _true(p.get("CopyImageTags")):
            tags = self._image(src_region, src_id).get("Tags", [])
            if tags:
                self._call("ec2", req.region, "create_tags", Resources=[new_id], Tags=tags)
        self._apply_tags(req.region, tag_specs(p), new_id,
                         [m["Ebs"]["SnapshotId"] for m in new_image.get("BlockDeviceMappings", []) if "Ebs" in m])
        return resp

    def _DeregisterImage(self, req, forward) -> Response:
        resp = forward(req)
        if resp.status == 200:
            with self.lock:
                self.images.pop(req.params.get("ImageId", ""), None)
                self.deprecations.pop(req.params.get("ImageId", ""), None)
        return resp

    def _DescribeImages(self, req, forward) -> Response:
        resp = forward(req)
        if resp.status != 200:
            return resp
        with self.lock:
            images = copy.deepcopy(self.images)
            deprecations = dict(self.deprecations)
        if not images and not deprecations:
            return resp
        root = ET.fromstring(resp.body)
        ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""

        def q(tag: str) -> str:
            return f"{{{ns}}}{tag}" if ns else tag

        changed = False
        for item in root.findall(f"{q('imagesSet')}/{q('item')}"):
            image_id = item.findtext(q("imageId"))
            inject = dict(images.get(image_id, {}))
            if image_id in deprecations:
                inject["deprecationTime"] = deprecations[image_id]
            for tag, value in inject.items():
                for old in item.findall(q(tag)):
                    item.remove(old)
                if value is not REMOVE:
                    item.append(_element(tag, value, q))
                changed = True
        if not changed:
            return resp
        if ns:
            ET.register_namespace("", ns)
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)
        return Response(resp.status, resp.headers, body, resp.reason)

    def _DescribeImageAttribute(self, req, forward) -> Response:
        attr = req.params.get("Attribute", "")
        if attr not in ("bootMode", "tpmSupport", "imdsSupport", "sriovNetSupport"):
            return forward(req)
        image_id = req.params.get("ImageId", "")
        image = self._image(req.region, image_id)
        with self.lock:
            known = self.images.get(image_id)
        if known is not None:
            value = known.get(attr)
            value = None if value is REMOVE else value
        else:
            value = {"bootMode": image.get("BootMode"), "sriovNetSupport": image.get("SriovNetSupport")}.get(attr)
        return ec2_response("DescribeImageAttribute",
                            {"imageId": image_id, attr: {"value": value} if value else None})


def _image_id(resp: Response) -> str | None:
    if resp.status != 200:
        return None
    m = re.search(rb"<imageId>(ami-[0-9a-zA-Z]+)</imageId>", resp.body)
    return m.group(1).decode() if m else None


def _bdm_view(b: dict, sizes: dict) -> dict:
    """A BlockDeviceMapping.N request group as DescribeImages shows it."""
    view = {"deviceName": b.get("DeviceName")}
    if "VirtualName" in b:
        view["virtualName"] = b["VirtualName"]
    if "NoDevice" in b:
        view["noDevice"] = ""
    if any(k.startswith("Ebs.") for k in b):
        snap = b.get("Ebs.SnapshotId")
        ebs = {"deleteOnTermination": b.get("Ebs.DeleteOnTermination", "true").lower() == "true",
               "snapshotId": snap,
               "volumeSize": b.get("Ebs.VolumeSize") or sizes.get(snap),
               "volumeType": b.get("Ebs.VolumeType", "gp2"),
               "iops": b.get("Ebs.Iops"), "throughput": b.get("Ebs.Throughput"),
               "encrypted": b.get("Ebs.Encrypted", "false").lower() == "true"}
        view["ebs"] = {k: v for k, v in ebs.items() if v is not None}
    return view


def _element(tag: str, value, q) -> ET.Element:
    el = ET.Element(q(tag))
    if isinstance(value, dict):
        for k, v in value.items():
            if v is not None:
                el.append(_element(k, v, q))
    elif isinstance(value, list):
        for v in value:
            el.append(_element("item", v, q))
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    else:
        el.text = str(value)
    return el
