"""Service mode has Django's user commands: a lost admin password can be reset."""

from __future__ import annotations

import subprocess

from django.contrib.auth.models import User

from tests.conftest import ALL_DATABASES, jobline_process

pytestmark = ALL_DATABASES


def test_createsuperuser_and_changepassword_run_in_service_mode(alias, service_env):
    env = service_env(alias, DJANGO_SUPERUSER_PASSWORD="first-pw-1234")
    made = jobline_process(
        env, "createsuperuser", "--noinput", "--username", "boss", "--email", "b@example.com"
    )
    assert made.wait(120) == 0, made.stdout.read()
    boss = User.objects.using(alias).get(username="boss")
    assert boss.is_superuser and boss.check_password("first-pw-1234")
    # changepassword asks on the terminal: without one (a new session, no stdin) it starts, asks,
    # and gives up; what matters is that it is Django's command, run on jobline's database
    asked = jobline_process(
        env, "changepassword", "boss", stdin=subprocess.DEVNULL, start_new_session=True
    )
    out = asked.communicate(timeout=120)[0]
    assert "Changing password for user 'boss'" in out
