"""The container's HEALTHCHECK: exit 0 when crmbridge's /healthz answers 200, else 1.

Standard library only (the slim image has no curl). The port is CRMBRIDGE_HTTP__PORT (8080 by
default); the probe always asks loopback, whatever CRMBRIDGE_HTTP__HOST binds.
"""

import os
import sys
import urllib.request

port = os.environ.get("CRMBRIDGE_HTTP__PORT", "8080")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except OSError as exc:
    print(f"healthcheck: {exc}", file=sys.stderr)
    sys.exit(1)
