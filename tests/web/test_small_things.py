"""Small things a newcomer hit: descriptions render their markup, the admin has an icon."""

from __future__ import annotations

from jobline.web.filters import markup


def test_markup__code_and_emphasis_rendered_anything_else_escaped():
    shown = markup("Wait ``seconds`` (`float`), *not* **busy**: <script>x</script> 2 * 3")
    assert shown == (
        "Wait <code>seconds</code> (<code>float</code>), <em>not</em> <strong>busy</strong>:"
        " &lt;script&gt;x&lt;/script&gt; 2 * 3"
    )


def test_new_job_picker__shows_the_sleep_description_with_its_code(ui):
    page = ui.get("/jobs/new/").content.decode()
    assert "Wait <code>seconds</code> without holding a thread." in page


def test_favicon__the_logo_for_the_admin_too(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 302 and "/assets/logo.svg?v=" in answer.url
    assert client.get(answer.url).status_code == 200
