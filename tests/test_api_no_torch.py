"""The API process starts and serves without importing torch (or diffusers)."""

from __future__ import annotations

import subprocess
import sys

from tests.processes import ROOT, guarded_pythonpath

PROBE = """
import sys
from api import create_app
app = create_app()
with app.test_client() as client:
    assert client.get('/api/modes').status_code == 200
heavy = sorted(m for m in ('torch', 'diffusers', 'transformers', 'tasks', 'workers') if m in sys.modules)
print(heavy)
"""


def test_api_never_imports_torch(redis_server, modes_file):
    env = {
        "REDIS_URL": redis_server.url,
        "MODES_FILE": str(modes_file),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": guarded_pythonpath(),
    }
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
