#!/usr/bin/python3
"""Drives openstacksdk (Debian python3-openstacksdk) against a Tessera endpoint, as a tenant's
script would, and prints one JSON object of what it saw. Run with Debian's /usr/bin/python3.

Usage: sdk_client.py ENDPOINT WORKDIR
"""
import hashlib
import json
import os
import sys

import openstack

endpoint, workdir = sys.argv[1], sys.argv[2]
conn = openstack.connect(auth_type="none", auth={"endpoint": endpoint}, image_endpoint_override=endpoint)
out = {}

data = os.urandom(3 * 1024 * 1024 + 17)
src = os.path.join(workdir, "sdk.raw")
with open(src, "wb") as f:
    f.write(data)

img = conn.image.create_image(
    name="sdk-demo", filename=src, disk_format="raw", container_format="bare",
    wait=True, tags=["sdk"], allow_duplicates=True,
)
img = conn.image.get_image(img.id)
out["created"] = {"status": img.status, "size": img.size, "checksum": img.checksum,
                  "md5": hashlib.md5(data).hexdigest(), "hash_algo": img.hash_algo,
                  "hash_value": img.hash_value, "sha512": hashlib.sha512(data).hexdigest()}

# Paginated listing: six small images, pages of two, filtered by tag.
for i in range(6):
    conn.image.create_image(name="sdk-page-%d" % i, data=b"x" * (i + 1), disk_format="raw",
                            container_format="bare", tags=["page"], allow_duplicates=True, wait=True,
                            validate_checksum=False)
out["paged"] = sorted(i.name for i in conn.image.images(tag="page", limit=2))
out["by_name"] = [i.id for i in conn.image.images(name="sdk-demo")]
out["sorted"] = [i.name for i in conn.image.images(tag="page", sort_key="name", sort_dir="desc")]

img = conn.image.update_image(img, min_ram=256, hw_disk_bus="virtio", name="sdk-renamed")
out["updated"] = {"min_ram": img.min_ram, "hw_disk_bus": img.hw_disk_bus, "name": img.name}
conn.image.add_tag(img, "extra")
conn.image.remove_tag(img, "sdk")
out["tags"] = sorted(conn.image.get_image(img).tags)

dst = os.path.join(workdir, "sdk.out")
with open(dst, "wb") as f:
    conn.image.download_image(img, output=f)
with open(dst, "rb") as f:
    out["downloaded_sha512"] = hashlib.sha512(f.read()).hexdigest()

conn.image.deactivate_image(img)
out["deactivated"] = conn.image.get_image(img).status
conn.image.reactivate_image(img)
out["reactivated"] = conn.image.get_image(img).status
conn.image.delete_image(img)
out["after_delete"] = conn.image.find_image(img.id)

# Multi-store: the stores, the default flagged (Glance sends the string "true").
out["stores"] = [[s.id, bool(s.is_default), s.description] for s in conn.image.stores()]
print(json.dumps(out))
