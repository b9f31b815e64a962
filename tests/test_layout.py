"""The repository layout that gunicorn, ``flask --app`` and ``python -m pytest`` depend on."""
from __future__ import annotations

import subprocess
import sys

from .conftest import REPO_ROOT


def test_platform_folder_is_not_a_package():
    # A top-level package named "platform" would shadow the standard library module.
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()
    assert (REPO_ROOT / "platform" / "chanjiao" / "__init__.py").exists()


def test_app_imports_from_repo_root_as_gunicorn_does(tmp_path):
    # gunicorn puts the working directory first on sys.path and imports "wsgi:app".
    code = (
        "import sys, platform, uuid; sys.path.insert(0, '.');"
        "import wsgi; assert wsgi.app.name == 'chanjiao';"
        "assert platform.system(); print('ok', platform.__file__)"
    )
    # The import path is the subject, not readiness: an empty instance would be refused.
    env = {"PATH": "/usr/bin:/bin", "CHANJIAO_INSTANCE_PATH": str(tmp_path), "HF_HUB_OFFLINE": "1",
           "CHANJIAO_STARTUP_CHECK": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    assert str(REPO_ROOT) not in result.stdout.split()[-1]  # the stdlib platform, not ours


def test_gunicorn_loads_the_app(tmp_path):
    # The import path is the subject, not readiness: an empty instance would be refused.
    env = {"PATH": "/usr/bin:/bin", "CHANJIAO_INSTANCE_PATH": str(tmp_path), "HF_HUB_OFFLINE": "1",
           "CHANJIAO_STARTUP_CHECK": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
