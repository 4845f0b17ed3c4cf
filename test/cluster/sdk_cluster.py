#!/usr/bin/python3
"""openstacksdk (Debian's python3-openstacksdk) against a Tessera endpoint with a token: uploads
FILE as a new image, downloads image DOWNLOAD_ID, and prints one JSON object of what it saw.
Run with Debian's /usr/bin/python3.

Usage: sdk_cluster.py ENDPOINT TOKEN FILE DOWNLOAD_ID
"""
import hashlib
import json
import sys

import openstack

endpoint, token, src, download_id = sys.argv[1:5]
conn = openstack.connect(
    auth_type="admin_token", auth={"endpoint": endpoint, "token": token}, image_endpoint_override=endpoint
)
img = conn.image.create_image(
    name="sdk-cluster", filename=src, disk_format="raw", container_format="bare", wait=True,
    allow_duplicates=True,
)
img = conn.image.get_image(img.id)
digest = hashlib.md5()
for piece in conn.image.download_image(download_id, stream=True).iter_content(1 << 20):
    digest.update(piece)
print(json.dumps({"id": img.id, "status": img.status, "checksum": img.checksum,
                  "downloaded_md5": digest.hexdigest()}))
