"""graphql-http's own server audit (the GraphQL-over-HTTP reference implementation's checks),
run by Node against a real gateway. Every audit must pass: no error, no warning.

The package comes from the npm registry; `.ci/run` installs it into the folder named by
``PANELQL_TEST_NODE_MODULES``. Without Node or that folder the test skips with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import GatewayUnderTest

AUDIT = """
const { serverAudits } = require('graphql-http');
const [url, key] = process.argv.slice(2);
const fetchFn = (input, init = {}) =>
  fetch(input, { ...init, headers: { ...(init.headers || {}), 'x-api-key': key } });
(async () => {
  const results = [];
  for (const audit of serverAudits({ url, fetchFn })) {
    const result = await audit.fn();
    results.push({ id: audit.id, name: audit.name, status: result.status,
                   reason: result.reason || null });
  }
  console.log(JSON.stringify(results));
})().catch((err) => { console.error(err); process.exit(1); });
"""


def _modules() -> Path:
    node = shutil.which("node")
    folder = os.environ.get("PANELQL_TEST_NODE_MODULES")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs) to run graphql-http's audit")
    if not folder or not (Path(folder) / "node_modules" / "graphql-http").is_dir():
        pytest.skip("PANELQL_TEST_NODE_MODULES does not hold graphql-http (.ci/run installs it: "
                    "npm install --prefix DIR graphql-http graphql)")
    return Path(folder)


def test_graphql_http_audit_passes_without_warnings(default_gateway: GatewayUnderTest,
                                                     tmp_path: Path) -> None:
    folder = _modules()
    script = tmp_path / "audit.js"
    script.write_text(AUDIT)
    done = subprocess.run(
        ["node", str(script), f"{default_gateway.url}/graphql", default_gateway.admin_key],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "NODE_PATH": str(folder / "node_modules")})
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) > 40  # the audit really ran
    failing = [r for r in results if r["status"] != "ok"]
    assert failing == [], json.dumps(failing, indent=1)
