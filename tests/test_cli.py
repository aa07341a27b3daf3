"""The `hub` command as a newcomer runs it."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.servers import base_env, demo, demo_seed

ALL_GROUPS = ("persist", "send", "profile", "media", "automation", "hooks")


def hub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        env=env or base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_prints_what_a_newcomer_needs_and_reuses_its_data(tmp_path: Path) -> None:
    first = demo(tmp_path).start()
    try:
        page = httpx.get(
            first.base_url + "/demo", params={"channel": demo_seed(tmp_path)["public_key"]}
        )
        assert page.status_code == 200
        key = demo_seed(tmp_path)["public_key"]
        assert f'<script src="/widget.js" data-channel="{key}" async></script>' in page.text
        assert (
            httpx.get(first.base_url + "/widget.js")
            .headers["content-type"]
            .startswith("application/javascript")
        )
        assert httpx.get(first.base_url + "/").status_code == 200
    finally:
        out = first.stop()
    seed = demo_seed(tmp_path)
    assert f"Inbox:      {first.base_url}/" in out
    assert f"E-mail:     {seed['email']}" in out
    assert f"Password:   {seed['password']}" in out
    assert f"Demo page:  {first.base_url}/demo?channel={seed['public_key']}" in out

    second = demo(tmp_path).start()  # another port, the same data directory
    try:
        login = httpx.post(
            second.base_url + "/api/auth/login",
            json={"email": seed["email"], "password": seed["password"]},
        )
        assert login.status_code == 200
        token = httpx.post(
            second.base_url + "/api/widget/token",
            json={"channel": seed["public_key"]},
            headers={"origin": second.base_url},
        )
        assert token.status_code == 200  # this run's origin was added to the demo channel
    finally:
        out = second.stop()
    assert f"Password:   {seed['password']}" in out
    assert "Traceback" not in out


def test_serve_without_a_secret_key_stops_with_one_sentence(tmp_path: Path) -> None:
    result = hub("serve", env=base_env(HUB_DATA_DIR=str(tmp_path)))
    assert result.returncode == 2
    assert re.fullmatch(
        r"hub: Environment variable HUB_SECRET_KEY is missing;[^\n]*\.\n", result.stderr
    )


def test_worker_needs_redis(tmp_path: Path) -> None:
    env = base_env(
        HUB_SECRET_KEY="k" * 40,
        HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUB_DATA_DIR=str(tmp_path),
    )
    result = hub("worker", env=env)
    assert result.returncode == 2 and "REDIS_URL" in result.stderr


def test_migrate_and_create_admin(tmp_path: Path) -> None:
    env = base_env(
        HUB_SECRET_KEY="k" * 40,
        HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUB_DATA_DIR=str(tmp_path),
    )
    assert hub("migrate", env=env).returncode == 0
    password = "pw-" + uuid.uuid4().hex

    def create(email: str, password: str) -> subprocess.CompletedProcess[str]:
        return hub(
            "create-admin", "--workspace", "Acme", "--email", email, "--password", password,
            "--name", "Bo Boss", env=env,
        )  # fmt: skip

    created = create("Boss@Acme.example", password)
    assert created.returncode == 0, created.stderr
    assert "with admin boss@acme.example" in created.stdout
    again = create("boss@acme.example", password)
    assert again.returncode != 0 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("a-long-pw", "at least 12 characters"),
        ("aaaaaaaaaaaa", "too easy to guess"),  # long enough, and a repeat
        ("password1234", "too easy to guess"),  # a common password
        ("chief@bigcorp.example", "too easy to guess"),  # the admin's own e-mail
        ("BigcorpChief1", "too easy to guess"),  # their e-mail's parts and a digit
    ],
)
def test_create_admin_refuses_a_weak_password_saying_why(
    tmp_path: Path, password: str, reason: str
) -> None:
    env = base_env(
        HUB_SECRET_KEY="k" * 40,
        HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUB_DATA_DIR=str(tmp_path),
    )
    refused = hub(
        "create-admin", "--workspace", "Bigcorp", "--email", "chief@bigcorp.example",
        "--name", "Bo Boss", "--password", password, env=env,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stdout
    assert refused.stderr.startswith("hub: ") and reason in refused.stderr
    assert "Traceback" not in refused.stderr and password not in refused.stderr
    assert not (tmp_path / "hub.db").exists()  # refused before anything was written


def test_worker_refuses_an_unknown_group_naming_the_groups(tmp_path: Path) -> None:
    env = base_env(HUB_DATA_DIR=str(tmp_path))  # refused before the settings are read
    result = hub("worker", "--groups", "media,photos", env=env)
    assert result.returncode == 2
    assert result.stderr == (
        "hub: Unknown worker group 'photos'; the groups are persist, send, profile, media, "
        "automation, hooks, push.\n"
    )
    from_env = hub("worker", env=env | {"HUB_WORKER_WITHOUT": "persist,sned"})
    assert from_env.returncode == 2 and "Unknown worker group 'sned'" in from_env.stderr
    assert hub("worker", "--without", ",".join(ALL_GROUPS), env=env).returncode == 2
