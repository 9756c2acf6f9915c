#!/usr/bin/python3
# Signs S3 requests with Debian's python3-botocore (S3SigV4Auth) so tests/s3/sigv4_test.cc can
# compare ferry's signatures with botocore's. One JSON request per stdin line, one JSON answer
# per stdout line: {"authorization": ..., "canonical_request": ...}.
import datetime
import json
import sys
from unittest import mock
from urllib.parse import quote

import botocore.auth
import botocore.config
import botocore.credentials
from botocore.awsrequest import AWSRequest

for line in sys.stdin:
    c = json.loads(line)
    creds = botocore.credentials.Credentials(c["access"], c["secret"], c.get("token") or None)
    auth = botocore.auth.S3SigV4Auth(creds, "s3", c["region"])
    path = c["base_path"] + quote(c["key"], safe="/~")
    req = AWSRequest(method=c["method"], url=c["endpoint"] + path, headers=dict(c["headers"]),
                     data=bytes.fromhex(c["body_hex"]), params=[tuple(p) for p in c["params"]])
    if c["unsigned"]:
        req.context["client_config"] = botocore.config.Config(s3={"payload_signing_enabled": False})
    seen = {}
    real_canonical = auth.canonical_request
    def recording(r, real=real_canonical):
        seen["canonical"] = real(r)
        return seen["canonical"]
    auth.canonical_request = recording
    when = datetime.datetime.strptime(c["timestamp"], "%Y%m%dT%H%M%SZ")
    with mock.patch("botocore.auth.datetime") as dt:
        dt.datetime.utcnow.return_value = when
        auth.add_auth(req)
    print(json.dumps({"authorization": req.headers["Authorization"], "canonical_request": seen["canonical"]}), flush=True)
