"""The wire constants of the token protocol, each written down once.

Everything a client, a verifier, the local STS and the kubeconfig writer must
agree on byte for byte lives here under one name (docs/token-format.md;
Kubernetes exec plugin docs). Two lifetimes that used to share the name
``TOKEN_LIFETIME`` are now distinct:

- :data:`STS_URL_LIFETIME` (15 min): how long STS honours a presigned
  GetCallerIdentity URL after its ``X-Amz-Date``, whatever ``X-Amz-Expires``
  says. The verifier and the emulator enforce it.
- :data:`ADVERTISED_TOKEN_LIFETIME` (14 min): the ``expirationTimestamp`` a
  client puts in its ExecCredential (signing time + 14 min, a one-minute
  cushion, as aws-cli and aws-iam-authenticator advertise).

And two presign numbers: :data:`PRESIGN_EXPIRES_S` (the ``X-Amz-Expires`` every
client writes, 60) and :data:`MAX_PRESIGN_EXPIRES_S` (the largest one a
verifier accepts, 900).

This module is on the cache-hit path of ``kubeiam token``: it imports nothing
but the C half of ``datetime``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import timedelta
else:
    try:
        from _datetime import timedelta  # the C class; datetime.py costs ~3 ms
    except ImportError:  # pragma: no cover - CPython always has _datetime
        from datetime import timedelta

# The token: TOKEN_PREFIX + unpadded base64url of the presigned URL
# (aws-iam-authenticator pkg/token, aws-cli eks get-token).
TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format marker, not a secret
# The reference rejects tokens longer than 4096 bytes; exactly 4096 passes.
MAX_TOKEN_BYTES = 4096

# The signed header that binds a token to one cluster (clusterIDHeader).
CLUSTER_ID_HEADER = "x-k8s-aws-id"
# X-Amz-SignedHeaders of a conforming token (docs/token-format.md).
SIGNED_HEADERS = "host;" + CLUSTER_ID_HEADER

# The presigned STS call (query protocol).
STS_ACTION = "GetCallerIdentity"
STS_API_VERSION = "2011-06-15"
STS_XML_NAMESPACE = f"https://sts.amazonaws.com/doc/{STS_API_VERSION}/"

# X-Amz-Expires every client writes; STS ignores it (docs/token-format.md).
PRESIGN_EXPIRES_S = 60
# The largest X-Amz-Expires a verifier accepts (0..900; Go clients wrote 0).
MAX_PRESIGN_EXPIRES_S = 900
# How long STS honours a presigned URL after X-Amz-Date (and how far ahead of
# now a date may be before STS answers "Signature not yet current").
STS_URL_LIFETIME = timedelta(minutes=15)
# The expiry a client advertises: signing time + 14 minutes.
ADVERTISED_TOKEN_LIFETIME = timedelta(minutes=14)

# client.authentication.k8s.io versions kubectl still speaks (v1alpha1 is gone
# since kubectl 1.24); Kubernetes exec plugin docs.
EXEC_API_V1 = "client.authentication.k8s.io/v1"
EXEC_API_V1BETA1 = "client.authentication.k8s.io/v1beta1"
# The reserved cluster-extension name whose object arrives as spec.cluster.config.
EXEC_EXTENSION_NAME = "client.authentication.k8s.io/exec"

# The port the webhook listens on and the kubeconfig writer points the API
# server at: aws-iam-authenticator's default (docs/configuration.md). Both
# kubeconfig.pki and webhook.settings import it from here.
DEFAULT_WEBHOOK_PORT = 21362
