"""examples/kafka_jobs: "start one job from the template" works as documented, against the
example's stand-in for the YouTube API (the template's shipped key is one it accepts)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from jobline.cli.main import main
from jobline.models import Job
from jobline.models.api import Template
from jobline.services import templates
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "kafka_jobs"


@pytest.fixture
def executor(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))  # the executor imports fake_youtube beside it
    import executor

    yield executor
    sys.modules.pop("executor", None)
    sys.modules.pop("fake_youtube", None)


@pytest.mark.django_db
def test_a_job_started_from_the_template_is_scraped_by_the_executor(executor, capsys):
    assert main(["import-templates", str(EXAMPLE / "job_templates.json")], django_ready=True) == 0
    job = templates.start(Template.objects.get(name="youtube_scraper"))
    configs = Job.objects.get(pk=job.id).inputs["configs"]  # what the message carries
    found = asyncio.run(executor.scrape(executor.YouTubeJob.model_validate(configs)))
    assert found["title"] == "Jobline Demo Channel" and len(found["videos"]) == 3
