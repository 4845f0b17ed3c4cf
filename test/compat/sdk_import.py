#!/usr/bin/python3
"""Drives openstacksdk's import calls (Debian python3-openstacksdk) against a Tessera endpoint:
create_image with use_import (stage + glance-direct), import_image with web-download and
copy-image. Prints one JSON object of what it saw. Run with Debian's /usr/bin/python3.

Usage: sdk_import.py ENDPOINT WORKDIR WEB_URI
"""
import hashlib
import json
import os
import sys
import time

import openstack

endpoint, workdir, web_uri = sys.argv[1], sys.argv[2], sys.argv[3]
conn = openstack.connect(auth_type="none", auth={"endpoint": endpoint}, image_endpoint_override=endpoint)
out = {}


def settle(image_id):
    for _ in range(500):
        img = conn.image.get_image(image_id)
        if img.status != "importing" and "os_glance_import_task" not in img.properties:
            return img
        time.sleep(0.02)
    raise RuntimeError("import did not settle")


data = os.urandom(2 * 1024 * 1024 + 5)
src = os.path.join(workdir, "sdk-import.raw")
with open(src, "wb") as f:
    f.write(data)
img = conn.image.create_image(
    name="sdk-import", filename=src, disk_format="raw", container_format="bare",
    use_import=True, wait=True, allow_duplicates=True,
)
img = settle(img.id)
out["direct"] = {"status": img.status, "checksum": img.checksum, "md5": hashlib.md5(data).hexdigest()}

web = conn.image.create_image(name="sdk-web", disk_format="raw", container_format="bare", allow_duplicates=True)
conn.image.import_image(web, method="web-download", uri=web_uri)
web = settle(web.id)
out["web"] = {"status": web.status, "size": web.size}

conn.image.import_image(img, method="copy-image", stores=["extra"])
img = settle(img.id)
stores = getattr(img, "stores", None) or img.properties.get("stores", "")
out["copied"] = sorted(stores.split(",")) if isinstance(stores, str) else sorted(stores)
print(json.dumps(out))
