"""The UI's pages, under whatever prefix ``jobline.urls`` is included at."""

from __future__ import annotations

from django.urls import path

from jobline.web import (
    base,
    create,
    jobs,
    pipeline_start,
    pipelines,
    schedules,
    subscriptions,
    template_form,
    views,
)

app_name = "jobline"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("jobs/", jobs.jobs_list, name="jobs"),
    path("jobs/count/", jobs.jobs_count, name="jobs-count"),
    path("jobs/bulk/", jobs.jobs_bulk, name="jobs-bulk"),
    path("jobs/new/", create.new_job, name="new"),
    path("jobs/<int:pk>/", jobs.job_detail, name="job"),
    path("jobs/<int:pk>/terminate/", jobs.job_terminate, name="job-terminate"),
    path("jobs/<int:pk>/retry/", jobs.job_retry, name="job-retry"),
    # path: a queue stored before names had a pattern (such as "a/b") still has its buttons.
    path("queues/<path:name>/pause/", views.queue_pause, name="queue-pause"),
    path("queues/<path:name>/resume/", views.queue_resume, name="queue-resume"),
    path("queues/<path:name>/rules/", views.queue_rules, name="queue-rules"),
    path("schedules/", schedules.schedules_list, name="schedules"),
    path("schedules/new/", schedules.schedule_new, name="schedule-new"),
    path("schedules/preview/", schedules.preview, name="schedule-preview"),
    path("schedules/<int:pk>/", schedules.schedule_detail, name="schedule"),
    path("schedules/<int:pk>/edit/", schedules.schedule_edit, name="schedule-edit"),
    path("schedules/<int:pk>/run/", schedules.schedule_run, name="schedule-run"),
    path("schedules/<int:pk>/toggle/", schedules.schedule_toggle, name="schedule-toggle"),
    path("schedules/<int:pk>/delete/", schedules.schedule_delete, name="schedule-delete"),
    path("templates/", create.templates_list, name="templates"),
    path("templates/new/", template_form.template_new, name="template-new"),
    path("templates/<int:pk>/edit/", template_form.template_edit, name="template-edit"),
    path("pipelines/", pipelines.runs_list, name="pipelines"),
    path("pipelines/new/", pipeline_start.pipeline_define, name="pipeline-define"),
    path("pipelines/start/<str:name>/", pipeline_start.pipeline_start, name="pipeline-start"),
    path("pipelines/<int:pk>/", pipelines.run_detail, name="pipeline-run"),
    path("pipelines/<int:pk>/cancel/", pipelines.run_cancel, name="pipeline-cancel"),
    path("pipelines/<int:pk>/resume/", pipelines.run_resume, name="pipeline-resume"),
    path("subscriptions/", subscriptions.subscriptions_list, name="subscriptions"),
    path("subscriptions/new/", subscriptions.subscription_new, name="subscription-new"),
    path("subscriptions/<int:pk>/edit/", subscriptions.subscription_edit, name="subscription-edit"),
    path(
        "subscriptions/<int:pk>/delete/",
        subscriptions.subscription_delete,
        name="subscription-delete",
    ),
    path("assets/<path:name>", base.asset, name="asset"),
]
