"""pylxd (Debian python3-pylxd) against a Shoal gateway: prints what it saw as JSON.

usage: client.py SOCKET HTTPS_URL CERT KEY PASSWORD SERVER_CERT
"""
import json
import sys
import urllib.parse
import warnings

import pylxd

warnings.filterwarnings("ignore")
socket, url, cert, key, password, server_cert = sys.argv[1:7]
out = {}

local = pylxd.Client(endpoint="http+unix://" + urllib.parse.quote(socket, safe=""))
out["local_trusted"] = local.trusted
out["clustered"] = local.host_info["environment"]["server_clustered"]
out["extensions"] = "clustering" in local.host_info["api_extensions"]
local.api.patch(json={"config": {"core.trust_password": password}})
# pylxd 2.2 has no projects manager: its raw API object reaches the same endpoint.
out["projects"] = sorted(p["name"] for p in local.api.projects.get(params={"recursion": 1}).json()["metadata"])
out["profile_devices"] = local.profiles.get("default").devices
cluster = local.cluster.get()
out["cluster_enabled"] = cluster.enabled
out["members"] = [{"name": m.server_name, "database": m.database, "status": m.status, "message": m.message} for m in cluster.members.all()]
member = pylxd.models.ClusterMember.get(local, out["members"][0]["name"])
out["member_url"] = member.url

# The server's self-signed certificate, pinned as the only CA (IP SAN 127.0.0.1).
remote = pylxd.Client(endpoint=url, cert=(cert, key), verify=server_cert)
out["remote_trusted_before"] = remote.trusted
try:
    remote.authenticate("wrong-" + password)
    out["wrong_password"] = "accepted"
except pylxd.exceptions.LXDAPIException as e:
    out["wrong_password"] = str(e)
remote.authenticate(password)
out["remote_trusted_after"] = remote.trusted
out["certificates"] = len(local.certificates.all())
try:
    local.profiles.get("nosuch")
    out["missing_profile"] = "found"
except pylxd.exceptions.NotFound:
    out["missing_profile"] = "NotFound"
print(json.dumps(out))
